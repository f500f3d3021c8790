/**
 * Streamed parts (sg.stream) on the wire: the checks every room applies to the numbers a credit
 * and a parts head carry, which come from another process and may be anything.
 */
import { ProtocolError } from './messages.js';

/** A credit's job and part count, or a ProtocolError: whole numbers, `n` ≥ 0 (STREAM_STOPPED is one). */
export function checkCredit(job: unknown, n: unknown): { job: number; n: number } {
  if (!(Number.isSafeInteger(job) && Number.isSafeInteger(n) && (n as number) >= 0)) {
    throw new ProtocolError(`a credit needs a whole job number and a whole part count n ≥ 0 (got job ${JSON.stringify(job)}, n ${JSON.stringify(n)})`);
  }
  return { job: job as number, n: n as number };
}

/** A parts head's numbers, or a ProtocolError: a whole job number, first part `n` ≥ 0, `count` ≥ 1. */
export function checkPartsHead(head: { job: unknown; n: unknown; count: unknown }): void {
  const { job, n, count } = head;
  if (!(Number.isSafeInteger(job) && Number.isSafeInteger(n) && (n as number) >= 0 && Number.isSafeInteger(count) && (count as number) >= 1)) {
    throw new ProtocolError(`parts need a whole job number, a whole first part n ≥ 0 and a whole count ≥ 1 (got job ${JSON.stringify(job)}, n ${JSON.stringify(n)}, count ${JSON.stringify(count)})`);
  }
}
