/**
 * What one waiting call's progress counts: its own jobs, not the session's. map, mapResults and
 * submit count their claim; waitForResult and results() count the results of jobs added with
 * addJob that they return, and the jobs still out.
 */
import type { JobLedger } from './job-ledger.js';
import type { Claim } from './pending.js';
import type { Progress, WaitingCall } from './types.js';

/** The call's counts now. */
export type CallCounter = () => Progress;

const rateSince = (finished: number, startedAt: number) => {
  const seconds = (Date.now() - startedAt) / 1000;
  return seconds > 0 ? finished / seconds : 0;
};

/** `map(nap)`, `waitForResult({ all: true })`, `results()`. */
export function callLabel(method: WaitingCall['method'], fn?: string, all?: boolean): WaitingCall {
  const args = fn !== undefined ? fn : method === 'waitForResult' && all ? '{ all: true }' : '';
  return { method, ...(fn !== undefined && { fn }), ...(method === 'waitForResult' && { all: all === true }), label: `${method}(${args})` };
}

/** map, mapResults, submit: the claim's jobs. */
export function claimCounter(claim: Claim): CallCounter {
  const startedAt = Date.now();
  const total = claim.total;
  return () => {
    const finished = total - claim.open;
    return { done: finished - claim.failed, failed: claim.failed, total, outstanding: claim.open, rate: rateSince(finished, startedAt) };
  };
}

/**
 * waitForResult and results(): the results of jobs added with addJob that were there when the call
 * began or arrived since, and the jobs still out. With `first` (waitForResult without `all`), the
 * call waits for the first results only: one job outstanding until they are there.
 */
export function unclaimedCounter(ledger: JobLedger, first: boolean): CallCounter {
  const startedAt = Date.now();
  let okThere = 0;
  for (const result of ledger.arrived) if (result.ok) okThere++;
  const failedThere = ledger.arrived.length - okThere;
  const before = { ...ledger.unclaimedTotals };
  return () => {
    const done = okThere + ledger.unclaimedTotals.done - before.done;
    const failed = failedThere + ledger.unclaimedTotals.failed - before.failed;
    const finished = done + failed;
    const outstanding = first ? (finished > 0 ? 0 : 1) : ledger.unclaimed;
    return { done, failed, total: finished + outstanding, outstanding, rate: rateSince(finished, startedAt) };
  };
}
