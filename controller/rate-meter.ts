/**
 * Results per second over the last few seconds, for status(). Counted in one bucket per second,
 * so its memory stays the same however long the controller runs and however many messages come
 * (a list of every message, trimmed only when status() was asked for, grew without end).
 */
export class RateMeter {
  /** counts[s % length] holds the results of second s, for the second stamped in seconds[]. */
  private readonly counts: Float64Array;
  private readonly seconds: Float64Array;

  constructor(
    private readonly windowSeconds: number,
    private readonly startedAt: number,
  ) {
    this.counts = new Float64Array(windowSeconds);
    this.seconds = new Float64Array(windowSeconds).fill(-1);
  }

  /** How many buckets it keeps: fixed. */
  get size(): number {
    return this.counts.length;
  }

  add(now: number, count: number): void {
    const second = Math.floor(now / 1000);
    const at = second % this.counts.length;
    if (this.seconds[at] !== second) {
      this.seconds[at] = second;
      this.counts[at] = 0;
    }
    this.counts[at] += count;
  }

  /** Results per second over the window: this second so far and the whole ones before it (since the start, when that is shorter). */
  perSecond(now: number): number {
    const second = Math.floor(now / 1000);
    let recent = 0;
    for (let i = 0; i < this.counts.length; i++) {
      if (this.seconds[i]! > second - this.windowSeconds && this.seconds[i]! <= second) recent += this.counts[i]!;
    }
    const covered = this.windowSeconds - 1 + (now - second * 1000) / 1000;
    return Math.round(recent / Math.max(0.001, Math.min(covered, (now - this.startedAt) / 1000)));
  }
}
