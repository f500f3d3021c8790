/**
 * Room under maxQueued: jobs without a result, and results not yet taken, count against it. Lists
 * longer than the room (addJobAsync, map, mapResults) go in a slice at a time as room comes.
 */
import type { JobLedger } from './job-ledger.js';
import { QueueFullError } from './types.js';
import type { Waiters } from './waiters.js';

export class QueueRoom {
  constructor(
    readonly maxQueued: number,
    private readonly ledger: JobLedger,
    private readonly waiters: Waiters,
  ) {}

  /** How many more jobs fit now. */
  get free(): number {
    return this.maxQueued - this.ledger.held;
  }

  /** Resolves once `n` more jobs fit (as results arrive and are taken). */
  waitFor(n: number): Promise<void> {
    if (n > this.maxQueued) return Promise.reject(new RangeError(`waitForRoom(${n}): more than maxQueued (${this.maxQueued}) can never fit`));
    return this.waiters.until(() => this.free >= n);
  }

  /**
   * Hands `queue` items `start` to `end` of a list of `count`, a slice at a time as room comes.
   * Slices are at least a quarter of maxQueued (or what is left), so a long list does not go in a
   * few jobs per result message. `ids`: what was queued so far, for the error when no room can come.
   * Once `signal` is aborted, nothing more is queued and it rejects with the signal's reason.
   */
  async feed(count: number, queue: (start: number, end: number) => void, ids?: number[], signal?: AbortSignal): Promise<void> {
    const step = Math.ceil(this.maxQueued / 4);
    for (let start = 0; start < count; ) {
      signal?.throwIfAborted();
      const want = Math.min(step, count - start);
      if (this.free < want) await this.roomFor(want, count - start, ids, signal);
      const end = Math.min(count, start + this.free);
      queue(start, end);
      start = end;
    }
  }

  /**
   * Waits until `want` jobs fit, or fewer once nothing is in flight. Rejects when nothing is in
   * flight and no room is left after consumers woken by the last results have had their turn.
   */
  private async roomFor(want: number, left: number, ids: number[] = [], signal?: AbortSignal): Promise<void> {
    const pending = this.ledger.pending;
    for (;;) {
      await this.waiters.until(() => this.free >= want || pending.size === 0, undefined, signal);
      if (this.free > 0) return;
      await new Promise((resolve) => setImmediate(resolve));
      signal?.throwIfAborted();
      if (this.free > 0) return;
      if (pending.size === 0) throw new QueueFullError(this.maxQueued, pending.size, this.ledger.arrived.length, left, ids);
    }
  }
}
