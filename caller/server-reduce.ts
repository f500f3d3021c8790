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
import { inBatches, type ItemSource } from './item-stream.js';
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
  /** The calls queued under the key: it is free again only once each has settled (every job answered). */
  const calls: Array<Promise<unknown>> = [];
  try {
    await pool
      .define(key, reducer as (...args: never[]) => unknown, { ...(options.labels ? { labels: options.labels } : {}), ...(options.with ? { with: options.with } : {}) })
      .catch((error: unknown) => {
        // It says what the caller called, not the generated name.
        if (error instanceof CaptureError) error.message = error.message.replaceAll(`define('${key}')`, `mapReduce('${name}', …, { onServers: true })`).replaceAll(key, 'the reducer');
        throw error;
      });
    await pool.push(key, initial);
    // Every partial of every batch is combined straight into this one accumulator, with its index
    // among all the items; each claim's own accumulator is a dummy. (Combining batch results into a
    // total would alias `initial` with a reducer that adds into its accumulator in place.)
    let accumulator = initial;
    const fold = (batch: JobItem[], offset: number) => {
      const into = (_: null, value: V, index: number) => {
        accumulator = reducer(accumulator, value, offset + index);
        return null;
      };
      const combineInto = (_: null, partial: A, index: number) => {
        accumulator = combine(accumulator, partial, offset + index);
        return null;
      };
      const call = claim<null>(pool.claiming, 'mapReduce', name, batch, options, (resolve, reject) => reduceClaim(batch.length, into, null, resolve, reject, combineInto), {
        key,
        flushMs: Math.ceil(flushMs),
        offset,
      });
      calls.push(call);
      return call.then(() => []);
    };
    await inBatches(items, pool.room, fold);
    reusable = true;
    return accumulator;
  } catch (error) {
    // Aborted, the claims rejected with jobs still running, which may fold under the key yet.
    reusable = !options.signal?.aborted;
    throw error;
  } finally {
    // A failure settles a claim only once all its jobs are in: then no worker folds under the key any more.
    await Promise.allSettled(calls);
    await pool.drop(key).catch(() => false);
    if (reusable) free.push(key);
  }
}
