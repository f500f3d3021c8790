/**
 * Streamed parts (sg.stream) on the wire: a batch's frames after its head (see PartsHead), encoded
 * by the worker and decoded by the caller, and the checks every room applies to the numbers a
 * credit and a parts head carry, which come from another process and may be anything.
 */
import { decodeParsed, type EncodedValue } from './codec.js';
import { readUint32s } from './job-values.js';
import { ProtocolError, readJson } from './messages.js';

/** A batch's frames after its head: `values`, then `rest` (the kinds and the binary frames, or nothing). */
export interface EncodedParts {
  /** The parts' texts as one JSON array, in UTF-8. */
  values: Buffer;
  /** None when every part is plain without binary frames, else the kinds (a uint32 per part: binary frames × 2, + 1 when plain), then the binary frames. */
  rest: Uint8Array[];
}

/** The frames of a batch of encoded parts, in the order yielded. */
export function encodeParts(parts: readonly EncodedValue[]): EncodedParts {
  const values = Buffer.from(`[${parts.map((part) => part.text).join(',')}]`, 'utf8');
  if (parts.every((part) => part.plain && part.bins.length === 0)) return { values, rest: [] };
  const kinds = Uint32Array.from(parts, (part) => part.bins.length * 2 + (part.plain ? 1 : 0));
  return { values, rest: [new Uint8Array(kinds.buffer), ...parts.flatMap((part) => part.bins)] };
}

/** The parts of a parts message [head, values] or [head, values, kinds, ...binary frames], decoded; a ProtocolError when it does not hold its `count` parts. */
export function decodeParts(head: { job: number; count: number }, message: Buffer[]): unknown[] {
  const { count } = head;
  const values = readJson<unknown[]>(message[1], 'parts');
  if (!Array.isArray(values) || values.length !== count) throw new ProtocolError(`parts frame of job ${head.job} does not hold its ${count} parts`);
  const kindsFrame = message[2];
  if (!kindsFrame || kindsFrame.length === 0) return values; // every part plain JSON, no binary frames
  const kinds = readUint32s(kindsFrame, count, 'part kinds');
  let frame = 3;
  for (let i = 0; i < count; i++) {
    const bins = kinds[i]! >>> 1;
    if (frame + bins > message.length) throw new ProtocolError(`parts of job ${head.job} lack binary frames`);
    values[i] = decodeParsed(values[i], (kinds[i]! & 1) === 1, message.slice(frame, frame + bins));
    frame += bins;
  }
  return values;
}

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
