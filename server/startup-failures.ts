/**
 * Why workers cannot start: the pool's verdict once they keep dying, and what the last worker that
 * died before it was ready wrote on stderr (a --module that does not load says why there).
 */

/** Characters of a starting worker's stderr kept. */
const STARTUP_STDERR_KEPT = 1000;

/** start() when no worker process could be started. */
export class WorkersFailedError extends Error {
  override name = 'WorkersFailedError';
}

export class StartupFailures {
  /** The pool's reason for no longer reforking, once it gave up. */
  reason?: string;
  private readonly stderr = new Map<number, string>();
  /** What the last worker that died before it was ready wrote. */
  last = '';

  /** Output of worker `w`; only a starting worker's stderr is kept. */
  output(w: number, ready: boolean, stream: 'stdout' | 'stderr', text: string): void {
    if (stream === 'stderr' && !ready) this.stderr.set(w, ((this.stderr.get(w) ?? '') + text).slice(-STARTUP_STDERR_KEPT));
  }

  down(w: number): void {
    if (this.stderr.has(w)) this.last = this.stderr.get(w)!;
    this.stderr.delete(w);
  }

  error(): WorkersFailedError {
    const wrote = this.last.trim();
    return new WorkersFailedError(`${this.reason}${wrote ? `; the last one wrote:\n${wrote}` : ''}`);
  }
}
