/**
 * mapReduce with `onServers` (a tree reduction): the reducer is defined under a generated name (so
 * it travels as define ships any function, its captured names with it, or is refused with a
 * CaptureError before anything is queued), `initial` is pushed once per server under that name,
 * and the call's jobs carry a fold tag: each worker folds their values itself and sends partials,
 * which the caller combines (see server/worker-fold.ts, controller/folded-jobs.ts).
 */
import { randomBytes } from 'node:crypto';
import { claim, type ClaimingPool } from './claims.js';
import { CaptureError } from './definition-capture.js';
import { overBatches, type ItemSource } from './item-stream.js';
import { reduceClaim } from './pending.js';
import type { DefineOptions, JobItem, MapReduceOptions } from './types.js';

/** What a tree reduction needs of its pool. */
export interface ReducingPool {
  readonly claiming: ClaimingPool;
  define(name: string, fn: (...args: never[]) => unknown, options: DefineOptions): Promise<number>;
  push(name: string, value: unknown): Promise<number>;
  drop(name: string): Promise<boolean>;
  /** Resolves once `n` more jobs fit under maxQueued (for items from an iterable). */
  room(n: number): Promise<void>;
}

/** How often a worker sends its partial by default (ms): what a lost worker's accumulator costs to rerun, at most. */
export const DEFAULT_FOLD_FLUSH_MS = 1000;

/** Fold names of calls that ended, free to be defined again: the definitions shipped to every worker stay as few as the calls ever run at once. */
const freeKeys = new WeakMap<ClaimingPool, string[]>();
const tag = randomBytes(4).toString('hex');
let keys = 0;

export async function reduceOnServers<A, V>(
  pool: ReducingPool,
  name: string,
  items: JobItem[] | ItemSource,
  reducer: (accumulator: A, value: V, index: number) => A,
  initial: A,
  options: MapReduceOptions<A>,
): Promise<A> {
  if (typeof reducer !== 'function') throw new TypeError('mapReduce() needs a reducer function');
  const combine = options.combine ?? (reducer as unknown as (accumulator: A, partial: A, index: number) => A);
  if (typeof combine !== 'function') throw new TypeError("mapReduce(): 'combine' must be a function");
  const flushMs = options.foldFlushMs ?? DEFAULT_FOLD_FLUSH_MS;
  if (typeof flushMs !== 'number' || !(flushMs >= 0) || !Number.isFinite(flushMs)) throw new TypeError(`mapReduce(): 'foldFlushMs' must be a number of ms ≥ 0 (got ${String(flushMs)})`);
  pool.claiming.assertRunning();
  if (Array.isArray(items) && items.length === 0) return initial;
  const free = freeKeys.get(pool.claiming) ?? [];
  freeKeys.set(pool.claiming, free);
  const key = free.pop() ?? `mapReduce.fold.${tag}.${++keys}`;
  let reusable = false;
  try {
    await pool
      .define(key, reducer as (...args: never[]) => unknown, { ...(options.labels ? { labels: options.labels } : {}), ...(options.with ? { with: options.with } : {}) })
      .catch((error: unknown) => {
        // It says what the caller called, not the generated name.
        if (error instanceof CaptureError) error.message = error.message.replaceAll(`define('${key}')`, `mapReduce('${name}', …, { onServers: true })`).replaceAll(key, 'the reducer');
        throw error;
      });
    await pool.push(key, initial);
    const fold = (batch: JobItem[], offset: number) =>
      claim<A>(pool.claiming, 'mapReduce', name, batch, options, (resolve, reject) => reduceClaim(batch.length, reducer, initial, resolve, reject, combine), {
        key,
        flushMs: Math.ceil(flushMs),
        offset,
      }).then(([result]) => result as A);
    const result = Array.isArray(items) ? await fold(items, 0) : await foldBatches(items, pool.room, fold, combine, initial);
    reusable = true;
    return result;
  } catch (error) {
    // Every job answered (a failure settles a claim only once all are in): no worker folds under the key any more.
    reusable = !options.signal?.aborted;
    throw error;
  } finally {
    await pool.drop(key).catch(() => false);
    if (reusable) free.push(key);
  }
}

/** Items from an iterable: each batch folded on the servers as its own call, under the same key; the caller combines the batches' results as they come. */
async function foldBatches<A>(
  items: ItemSource,
  room: (n: number) => Promise<void>,
  fold: (batch: JobItem[], offset: number) => Promise<A>,
  combine: (accumulator: A, partial: A, index: number) => A,
  initial: A,
): Promise<A> {
  let accumulator = initial;
  let next = 0;
  let combined = 0;
  await overBatches(items, room, async (batch) => {
    const offset = next;
    next += batch.length;
    const partial = await fold(batch, offset); // awaited first: batches run at once, and each folds into the accumulator as it is then
    accumulator = combine(accumulator, partial, combined++);
    return [];
  });
  return accumulator;
}
