/**
 * Conditions the caller waits on (room under maxQueued, results there, start-up over): each is
 * checked again whenever something it depends on changes (wake), and all fail at once when the
 * controller is gone.
 */
export class Waiters {
  private readonly checks = new Set<() => void>();

  constructor(private readonly failure: () => Error | undefined) {}

  get size(): number {
    return this.checks.size;
  }

  /**
   * Resolves once `condition` holds (checked now and at every wake), or after `timeoutMs` all the
   * same. Rejects with `signal.reason` once the signal is aborted (a wait its caller gave up on).
   */
  until(condition: () => boolean, timeoutMs?: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (condition()) return Promise.resolve();
    const failed = this.failure();
    if (failed) return Promise.reject(failed);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        const error = this.failure();
        if (error) finish({ error });
        else if (condition()) finish();
      };
      const abort = () => finish({ error: signal!.reason });
      const finish = (failed?: { error: unknown }) => {
        this.checks.delete(check);
        clearTimeout(timer);
        signal?.removeEventListener('abort', abort);
        if (failed) reject(failed.error);
        else resolve();
      };
      if (timeoutMs !== undefined) timer = setTimeout(() => finish(), timeoutMs);
      signal?.addEventListener('abort', abort, { once: true });
      this.checks.add(check);
    });
  }

  wake(): void {
    for (const check of [...this.checks]) check();
  }
}
