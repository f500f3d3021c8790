/**
 * The caller's record of jobs still waiting for a result, kept per addJob call rather than per
 * job: one call's jobs have consecutive ids, one function and one queue time, so a million queued
 * jobs cost one bit-sized byte each plus a few small objects, not a map entry and an object each.
 */
import type { JobResult } from './types.js';
import { SpanList } from '../runtime/id-spans.js';

/** Where the results of a map, mapResults or submit go instead of to poll(). */
export interface Claim {
  /** mapResults: every whole result, in input order. */
  results: JobResult[] | undefined;
  /** map and submit: only the values, in input order (no JobResult is built for them). */
  values: unknown[] | undefined;
  /** map and submit: the failure earliest in input order. */
  failure: { index: number; error: Error } | undefined;
  /** mapReduce: each value folded in as it arrives (nothing kept per job); a throw is the claim's failure. */
  fold?: (value: unknown, index: number) => void;
  /** mapReduce onServers: a worker's partial (its fold of the jobs it ran) combined in; a throw is the claim's failure. */
  combine?: (partial: unknown, index: number) => void;
  /** Jobs of the claim, and those still without a result: a claim larger than maxQueued spans several segments. */
  total: number;
  open: number;
  /** Jobs of the claim whose result is a failure (its progress view counts them). */
  failed: number;
  /** Called once, when the last result is in. */
  settle(claim: Claim): void;
}

/** mapResults' claim: every whole result, in input order. */
export function resultsClaim(count: number, resolve: (results: JobResult[]) => void): Claim {
  return { results: new Array<JobResult>(count), values: undefined, failure: undefined, total: count, open: count, failed: 0, settle: (claim) => resolve(claim.results!) };
}

/** map's and submit's claim: the values in input order, or the failure earliest in input order. */
export function valuesClaim(count: number, resolve: (values: unknown[]) => void, reject: (error: Error) => void): Claim {
  return {
    results: undefined,
    values: new Array<unknown>(count),
    failure: undefined,
    total: count,
    open: count,
    failed: 0,
    settle: (claim) => (claim.failure ? reject(claim.failure.error) : resolve(claim.values!)),
  };
}

/**
 * mapReduce's claim: each value folded into the accumulator as it arrives, in completion order,
 * so memory stays bounded; it rejects with the failure earliest in input order (a job's, or the
 * reducer's own throw), once every job is in.
 */
export function reduceClaim<A, V, P = A>(
  count: number,
  reducer: (accumulator: A, value: V, index: number) => A,
  initial: A,
  resolve: (result: A[]) => void,
  reject: (error: Error) => void,
  combiner?: (accumulator: A, partial: P, index: number) => A,
): Claim {
  let accumulator = initial;
  const claim: Claim = {
    results: undefined,
    values: undefined,
    failure: undefined,
    total: count,
    open: count,
    failed: 0,
    fold: (value, index) => {
      if (claim.failure) return; // the result is a rejection now: folding more only costs time
      try {
        accumulator = reducer(accumulator, value as V, index);
      } catch (error) {
        claimFailed(claim, index, error instanceof Error ? error : new Error(String(error)));
      }
    },
    combine: combiner
      ? (partial, index) => {
          if (claim.failure) return;
          try {
            accumulator = combiner(accumulator, partial as P, index);
          } catch (error) {
            claimFailed(claim, index, error instanceof Error ? error : new Error(String(error)));
          }
        }
      : undefined,
    settle: (settled) => (settled.failure ? reject(settled.failure.error) : resolve([accumulator])),
  };
  return claim;
}

/** Records a result of `claim` as in (`ok`: not a failure); settles the claim with its last. */
export function claimAnswered(segment: Segment, claim: Claim, ok: boolean): void {
  if (!ok) claim.failed++;
  // A closed segment lingers until the next sweep: it must not keep the results (and their payloads) alive meanwhile.
  if (segment.open === 0) segment.claim = undefined;
  if (--claim.open === 0) claim.settle(claim);
}

export function claimFailed(claim: Claim, index: number, error: Error): void {
  if (!claim.failure || index < claim.failure.index) claim.failure = { index, error };
}

/** The jobs of one addJob (or map, submit) call. */
export interface Segment {
  first: number;
  count: number;
  fn: string;
  queuedAt: number;
  /** Jobs of this segment still without a result. */
  open: number;
  /** 1 once a job's result is in, so a late duplicate is dropped (one-job segments use `open`). */
  arrived?: Uint8Array;
  /** Set by map/submit: the results go here instead of to poll(). */
  claim?: Claim;
  /** Where this segment's first job stands in its claim's input order. */
  claimAt: number;
}

export class PendingJobs {
  /** Closed segments linger until the next sweep. */
  private readonly segments = new SpanList<Segment>();
  /** Jobs without a result, over all segments. */
  size = 0;

  add(first: number, count: number, fn: string, queuedAt: number): Segment {
    // Every field in the literal, so that all segments share one shape whether or not they are claimed.
    const segment: Segment = { first, count, fn, queuedAt, open: count, arrived: count > 1 ? new Uint8Array(count) : undefined, claim: undefined, claimAt: 0 };
    if (count > 0) {
      this.segments.push(segment);
      this.size += count;
    }
    return segment;
  }

  /** Marks job `id` as answered and returns its segment; undefined for an unknown id or a duplicate. */
  take(id: number): Segment | undefined {
    const segment = this.segments.find(id);
    if (!segment || segment.open === 0) return undefined;
    if (segment.arrived) {
      const index = id - segment.first;
      if (segment.arrived[index]) return undefined;
      segment.arrived[index] = 1;
    }
    segment.open--;
    this.size--;
    if (segment.open === 0) this.segments.closedOne();
    return segment;
  }

  /** Every job still without a result, with its segment. */
  *unanswered(): Generator<[number, Segment]> {
    for (const segment of this.segments.all) {
      if (segment.open === 0) continue;
      for (let i = 0; i < segment.count; i++) {
        if (segment.arrived ? !segment.arrived[i] : segment.open > 0) yield [segment.first + i, segment];
      }
    }
  }

  hasOpenClaims(): boolean {
    return this.segments.all.some((segment) => segment.open > 0 && segment.claim !== undefined);
  }
}
