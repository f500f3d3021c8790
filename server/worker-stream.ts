/**
 * A streaming job on a worker (sg.stream): the parts its generator yields go to the caller in
 * batches (one 'parts' message), no further ahead of what the caller has taken (its credit) than
 * the stream window, so a fast generator waits for a slow notebook instead of flooding it.
 *
 * Parts yielded back to back share a batch; a batch goes as soon as the generator really waits
 * (setImmediate: once every pending microtask ran), when it is full, or before the worker waits
 * for credit. A part that comes a while after the one before (after an await, say) goes at once,
 * on its own, as it did unbatched: a lone part is never held back for company.
 */
import { encodeValue, type EncodedValue } from '../protocol/codec.js';
import { partsBytes, STREAM_STOPPED, STREAM_WINDOW, STREAM_WINDOW_BYTES } from '../protocol/messages.js';
import { encodeParts, type EncodedParts } from '../protocol/stream-parts.js';

type Parts = AsyncIterable<unknown> | Iterable<unknown>;

/** Most parts in one batch. */
export const BATCH_PARTS = 1024;
/** Most bytes in one batch (texts counted by length), unless one part alone is larger: it goes alone. */
export const BATCH_BYTES = 1024 * 1024;
/**
 * A part that comes this long after the worker was done with the one before goes at once, on its
 * own: the generator waited (or worked) in between, so more parts are not due soon. Parts yielded
 * back to back come microseconds apart.
 */
const LONE_PART_GAP_MS = 0.05;

/** One batch of parts, as its message carries it (see PartsHead). */
export interface PartBatch extends EncodedParts {
  /** Number of its first part. */
  n: number;
  count: number;
}

export function isStreamable(value: unknown): value is Parts {
  return value !== null && typeof value === 'object' && (Symbol.asyncIterator in value || (Symbol.iterator in value && typeof (value as { next?: unknown }).next === 'function'));
}

/** Parts being gathered into the next batch. */
class BatchBuilder {
  private parts: EncodedValue[] = [];
  first = 0;
  bytes = 0;

  get count(): number {
    return this.parts.length;
  }

  add(part: EncodedValue, size: number): void {
    this.parts.push(part);
    this.bytes += size;
  }

  take(): PartBatch {
    const batch: PartBatch = { n: this.first, count: this.parts.length, ...encodeParts(this.parts) };
    this.first += this.parts.length;
    this.parts = [];
    this.bytes = 0;
    return batch;
  }
}

/** What a streaming job has sent that its caller has not yet credited, in parts and in bytes of whole batches. */
class JobWindow {
  /** Parts the caller has taken (its last credit). */
  credited = 0;
  /** Parts sent or gathered into the batch to come. */
  yielded = 0;
  bytes = 0;
  /** Batches sent and not yet credited: where each ends (the number past its last part) and its bytes. */
  private readonly batches: Array<{ end: number; bytes: number }> = [];

  /** The reader stopped early (see STREAM_STOPPED). */
  get stopped(): boolean {
    return this.credited >= STREAM_STOPPED;
  }

  room(pendingBytes: number): boolean {
    return this.yielded - this.credited < STREAM_WINDOW && this.bytes + pendingBytes < STREAM_WINDOW_BYTES;
  }

  sent(end: number, bytes: number): void {
    if (end <= this.credited) return; // a reader that stopped early credited everything to come
    this.batches.push({ end, bytes });
    this.bytes += bytes;
  }

  /** The caller has taken `n` parts: the batches wholly below `n` are off the bytes in flight (as the caller counts them). */
  credit(n: number): boolean {
    if (n <= this.credited) return false;
    this.credited = n;
    let done = 0;
    while (done < this.batches.length && this.batches[done]!.end <= n) this.bytes -= this.batches[done++]!.bytes;
    this.batches.splice(0, done);
    return true;
  }
}

/** A job's key: every controller numbers its jobs from 1, so two sessions sharing a server have the same job ids. */
const keyOf = (controller: string, job: number) => `${controller}\0${job}`;

export class StreamCredits {
  private readonly windows = new Map<string, JobWindow>();
  private waiting: { key: string; resolve: () => void } | undefined;

  /** The caller of `controller` has taken `n` parts of its `job`. */
  credit(controller: string, job: number, n: number): void {
    const key = keyOf(controller, job);
    if (!this.windows.get(key)?.credit(n)) return;
    if (this.waiting?.key === key) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve();
    }
  }

  /**
   * Sends the parts of `parts` in batches through `send`, waiting for credit whenever the window
   * is used up, and for `sent` (the batches handed on) after each full batch; returns how many
   * parts it sent (after a stop, not those gathered into the batch it dropped). Parts yielded
   * before a failure are sent before the failure is thrown.
   */
  async stream(controller: string, job: number, parts: Parts, send: (batch: PartBatch) => void, sent: () => Promise<void>): Promise<number> {
    const key = keyOf(controller, job);
    const window = new JobWindow();
    this.windows.set(key, window);
    const batch = new BatchBuilder();
    let immediate: NodeJS.Immediate | undefined;
    /** When the worker was done with the part before. */
    let doneAt = Number.NEGATIVE_INFINITY;
    /** Parts handed to `send`. */
    let sentParts = 0;
    const flush = () => {
      if (immediate) clearImmediate(immediate);
      immediate = undefined;
      if (batch.count === 0) return;
      const out = batch.take();
      window.sent(out.n + out.count, partsBytes(out.values, out.rest.slice(1)));
      sentParts = out.n + out.count;
      send(out);
    };
    try {
      for await (const part of parts as AsyncIterable<unknown>) {
        while (!window.room(batch.bytes)) {
          flush();
          await new Promise<void>((resolve) => (this.waiting = { key, resolve }));
        }
        if (window.stopped) break; // its reader stopped: leaving the loop ends the generator (return())
        const alone = batch.count === 0 && performance.now() - doneAt > LONE_PART_GAP_MS;
        const encoded = encodeValue(part, `part ${window.yielded} of job ${job}`);
        let size = encoded.text.length;
        for (const bin of encoded.bins) size += bin.byteLength;
        if (batch.count > 0 && batch.bytes + size > BATCH_BYTES) flush();
        batch.add(encoded, size);
        window.yielded++;
        if (alone || batch.count >= BATCH_PARTS || batch.bytes >= BATCH_BYTES) {
          flush();
          if (!alone) await sent(); // let it leave while the generator goes on
        } else immediate ??= setImmediate(flush);
        doneAt = performance.now();
      }
    } finally {
      if (window.stopped)
        batch.take(); // nobody reads them
      else flush();
      this.windows.delete(key);
      this.waiting = undefined;
    }
    return sentParts;
  }
}

/** A job not asked to stream whose function returned parts anyway: its result is them all, as a list. */
export async function collectParts(parts: Parts): Promise<unknown[]> {
  const all: unknown[] = [];
  for await (const part of parts as AsyncIterable<unknown>) all.push(part);
  return all;
}
