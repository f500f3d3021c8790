/**
 * Job values in bulk. The caller packs a batch of encoded job values into one UTF-8 frame, each
 * text followed by a comma, with a column of byte offsets beside it. Any run of consecutive jobs
 * is then one subarray of that frame: the controller hands runs to workers without copying,
 * parsing or re-encoding a single job, and a worker parses a whole run with one JSON.parse.
 */
import { ProtocolError } from './messages.js';

export interface PackedValues {
  /** `text0,text1,...,textN-1,` in UTF-8. */
  values: Buffer;
  /** Byte offsets, one per job and one past the end: job i is values[offsets[i], offsets[i + 1] - 1). */
  offsets: Uint32Array;
}

export function packValues(texts: readonly string[]): PackedValues {
  const joined = texts.length === 0 ? '' : `${texts.join(',')},`;
  const values = Buffer.from(joined, 'utf8');
  const offsets = new Uint32Array(texts.length + 1);
  const ascii = values.length === joined.length;
  let at = 0;
  for (let i = 0; i < texts.length; i++) {
    offsets[i] = at;
    at += (ascii ? texts[i]!.length : Buffer.byteLength(texts[i]!, 'utf8')) + 1;
  }
  offsets[texts.length] = at;
  return { values, offsets };
}

/** The bytes of jobs `start` to `end` (exclusive) as one frame, without the trailing comma: no copy. */
export function valuesOfRun(packed: PackedValues, start: number, end: number): Buffer {
  return packed.values.subarray(packed.offsets[start]!, packed.offsets[end]! - 1);
}

/** Parses a run's frame into its `count` values (each a job's item, or a superjson tree of it). */
export function parseRun(frame: Buffer | undefined, count: number): unknown[] {
  if (!frame) throw new ProtocolError('job values frame is missing');
  let trees: unknown;
  try {
    trees = JSON.parse(`[${frame.toString('utf8')}]`);
  } catch {
    throw new ProtocolError('job values frame is not a list of JSON values');
  }
  if (!Array.isArray(trees) || trees.length !== count) throw new ProtocolError(`job values frame holds ${Array.isArray(trees) ? trees.length : 0} values, not ${count}`);
  return trees;
}

/** A frame of uint32 numbers (offsets, frame counts), viewed in place when aligned. */
export function readUint32s(frame: Buffer | undefined, count: number, what: string): Uint32Array {
  if (!frame || frame.byteLength !== 4 * count) throw new ProtocolError(`${what} frame must hold ${count} uint32 numbers`);
  if (frame.byteOffset % 4 === 0) return new Uint32Array(frame.buffer, frame.byteOffset, count);
  return new Uint32Array(new Uint8Array(frame).buffer);
}

export function uint32Bytes(numbers: Uint32Array): Uint8Array {
  return new Uint8Array(numbers.buffer, numbers.byteOffset, numbers.byteLength);
}

/** Checks a caller's offsets against its values frame: in order, each job at least its comma long. */
const COMMA = 0x2c;

export function checkOffsets(packed: PackedValues): void {
  const { values, offsets } = packed;
  if (offsets[0] !== 0 || offsets[offsets.length - 1] !== values.length) throw new ProtocolError('job offsets do not span the values frame');
  for (let i = 1; i < offsets.length; i++) {
    if (offsets[i]! <= offsets[i - 1]! || values[offsets[i]! - 1] !== COMMA) throw new ProtocolError(`job ${i - 1} does not end where its offset says`);
  }
}
