/**
 * Calls that wait for their own jobs' results (map, mapResults, submit): the items are queued as
 * one segment, or as several as room comes under maxQueued, and a claim gathers their results in
 * input order; the call's progress is shown while it waits.
 */
import { abortable } from './abortable.js';
import { encodeItems, jobArguments, type EncodedItems } from './job-encoding.js';
import type { JobLedger } from './job-ledger.js';
import { runSpecOf, type RunSpec } from './job-options.js';
import type { Claim, Segment } from './pending.js';
import type { ClaimingCall, ProgressDisplay } from './progress-display.js';
import type { JobItem, JobOptions, SpawnOptions } from './types.js';

/** What a claim needs of its pool. */
export interface ClaimingPool {
  readonly options: SpawnOptions;
  readonly defaultFunction?: string;
  readonly ledger: JobLedger;
  readonly display: ProgressDisplay;
  assertRunning(): void;
  feed(name: string, encoded: EncodedItems, spec: RunSpec, queued: (segment: Segment, start: number) => void, ids?: number[], signal?: AbortSignal): Promise<void>;
}

/** Queues `items` and resolves as `makeClaim`'s claim does once every result is in. */
export function claim<T>(
  pool: ClaimingPool,
  method: ClaimingCall,
  name: string,
  items: JobItem[],
  options: JobOptions | undefined,
  makeClaim: (resolve: (value: T[]) => void, reject: (error: Error) => void) => Claim,
  fold?: RunSpec['fold'],
): Promise<T[]> {
  try {
    pool.assertRunning();
    jobArguments(pool.defaultFunction, name, items);
    const encoded = encodeItems(name, items);
    const spec = runSpecOf(options ?? {}, pool.options);
    if (fold) spec.fold = fold;
    if (items.length === 0) return Promise.resolve([]);
    const signal = options?.signal;
    let made!: Claim;
    const settled = new Promise<T[]>((resolve, reject) => {
      // Aborted, it stops feeding and rejects; the results of jobs it queued are dropped with the claim.
      const settle = abortable(signal, resolve, reject);
      made = makeClaim(settle.resolve, settle.reject);
      const claimed = (segment: Segment, start: number) => {
        segment.claim = made;
        segment.claimAt = start;
        pool.ledger.unclaimed -= segment.count;
      };
      pool.feed(name, encoded, spec, claimed, undefined, signal).catch(settle.reject);
    });
    return pool.display.claimed(method, name, made, settled);
  } catch (error) {
    return Promise.reject(error);
  }
}
