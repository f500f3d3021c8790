/**
 * A streaming job on a worker (sg.stream): each part its generator yields goes to the caller at
 * once, at most STREAM_WINDOW parts ahead of what the caller has taken (its credit), so a fast
 * generator waits for a slow notebook instead of flooding it.
 */
import { encodeValue } from '../protocol/codec.js';
import { STREAM_WINDOW } from '../protocol/messages.js';

type Parts = AsyncIterable<unknown> | Iterable<unknown>;

export function isStreamable(value: unknown): value is Parts {
  return value !== null && typeof value === 'object' && (Symbol.asyncIterator in value || (Symbol.iterator in value && typeof (value as { next?: unknown }).next === 'function'));
}

export class StreamCredits {
  /** Parts each streaming job may have sent, in all, by job id. */
  private readonly allowed = new Map<number, number>();
  private waiting: { job: number; resolve: () => void } | undefined;

  /** The caller has taken `n` parts of `job`. */
  credit(job: number, n: number): void {
    if (!(n > (this.allowed.get(job) ?? STREAM_WINDOW) - STREAM_WINDOW)) return;
    this.allowed.set(job, n + STREAM_WINDOW);
    if (this.waiting?.job === job) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve();
    }
  }

  /**
   * Sends each part of `parts` through `send` (its number, then its encoding), waiting for credit
   * whenever STREAM_WINDOW parts are ahead of the caller; returns how many it sent.
   */
  async stream(job: number, parts: Parts, send: (n: number, part: ReturnType<typeof encodeValue>) => void): Promise<number> {
    this.allowed.set(job, STREAM_WINDOW);
    let n = 0;
    try {
      for await (const part of parts as AsyncIterable<unknown>) {
        while (n >= this.allowed.get(job)!) await new Promise<void>((resolve) => (this.waiting = { job, resolve }));
        send(n, encodeValue(part, `part ${n} of job ${job}`));
        n++;
      }
      return n;
    } finally {
      this.allowed.delete(job);
      this.waiting = undefined;
    }
  }
}

/** A job not asked to stream whose function returned parts anyway: its result is them all, as a list. */
export async function collectParts(parts: Parts): Promise<unknown[]> {
  const all: unknown[] = [];
  for await (const part of parts as AsyncIterable<unknown>) all.push(part);
  return all;
}
