/**
 * map and mapResults over items that arrive as an (async) iterable: read a batch at a time, only
 * as room comes under maxQueued, each batch queued as its own call; the results come back in input
 * order, and a failure rejects once all are back, the earliest in input order, as with a list.
 */
import type { JobItem } from './types.js';

/** Items read before they are queued as one call. */
const BATCH = 1024;

export type ItemSource = AsyncIterable<JobItem> | Iterable<JobItem>;

export function isItemStream(items: unknown): items is ItemSource {
  return !Array.isArray(items) && items !== null && typeof items === 'object' && (Symbol.asyncIterator in items || Symbol.iterator in items);
}

/** Runs `run` on the items: an array as one batch from index 0, an iterable a batch at a time as room comes (overBatches). */
export async function inBatches(items: JobItem[] | ItemSource, room: (n: number) => Promise<void>, run: (batch: JobItem[], offset: number) => Promise<unknown[]>): Promise<void> {
  if (Array.isArray(items)) await run(items, 0);
  else await overBatches(items, room, run);
}

/**
 * Runs `run` on each batch of `source` as room comes (`room(n)` resolves once n more fit), with
 * the index of the batch's first item among all of them, and joins their results in order. A
 * source that throws rejects with its error once the batches already sent are back: nothing of
 * the call runs on past its end.
 */
export async function overBatches<R>(source: ItemSource, room: (n: number) => Promise<void>, run: (batch: JobItem[], offset: number) => Promise<R[]>): Promise<R[]> {
  const calls: Array<Promise<R[]>> = [];
  let batch: JobItem[] = [];
  let offset = 0;
  const send = () => {
    const call = run(batch, offset);
    call.catch(() => {}); // reported below, in input order, once all are back
    calls.push(call);
    offset += batch.length;
    batch = [];
  };
  try {
    for await (const item of source as AsyncIterable<JobItem>) {
      batch.push(item);
      if (batch.length === BATCH) {
        send();
        await room(BATCH);
      }
    }
  } catch (error) {
    await Promise.allSettled(calls);
    throw error;
  }
  if (batch.length > 0) send();
  const settled = await Promise.allSettled(calls);
  const failed = settled.find((outcome) => outcome.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.flatMap((outcome) => (outcome as PromiseFulfilledResult<R[]>).value);
}
