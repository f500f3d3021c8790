/**
 * How long a worker ran each session's jobs, told to its server every USAGE_REPORT_MS rather than
 * per job: the server's record of each session's share of a shared server (sessions.ts).
 */

/** How often a worker tells its server how long it ran each session's jobs. */
export const USAGE_REPORT_MS = 250;

export class WorkerUsage {
  /** Milliseconds run per controller since the last report. */
  private usage = new Map<string, number>();
  private lastReport = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly report: (ms: Array<[controller: string, ms: number]>) => void) {}

  /** `runMs` of `controller`'s job ended at `endedAt` (performance.now()). */
  ran(controller: string, runMs: number, endedAt: number): void {
    this.usage.set(controller, (this.usage.get(controller) ?? 0) + runMs);
    if (endedAt - this.lastReport >= USAGE_REPORT_MS) this.flush();
    // Not one message per job: whatever ran since goes on a timer (a job that spins blocks the timer, hence the check above).
    else this.timer ??= setTimeout(() => this.flush(), USAGE_REPORT_MS);
  }

  /** Reports what ran since the last report, if anything (also before the worker goes). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastReport = performance.now();
    if (this.usage.size === 0) return;
    this.report([...this.usage]);
    this.usage = new Map();
  }
}
