/**
 * Wake-ups for thousands of simulated workers from one process: one timer per millisecond that
 * anyone waits for, not one per worker. A worker that must wait until its running job ends asks to
 * be woken then; everyone due in the same millisecond shares the timer.
 */
export class Ticker {
  private readonly buckets = new Map<number, Array<() => void>>();

  /** Calls `wake` once performance.now() has passed `time` (rounded up to the millisecond). */
  at(time: number, wake: () => void): void {
    const key = Math.ceil(time);
    let bucket = this.buckets.get(key);
    if (!bucket) {
      const due: Array<() => void> = [];
      this.buckets.set(key, (bucket = due));
      setTimeout(
        () => {
          this.buckets.delete(key);
          for (const call of due) call();
        },
        Math.max(0, key - performance.now()),
      );
    }
    bucket.push(wake);
  }
}
