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

const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const [OPEN_BRACKET, CLOSE_BRACKET, OPEN_BRACE, CLOSE_BRACE] = [0x5b, 0x5d, 0x7b, 0x7d];

/** Most values packed together: a long list is packed a group at a time (see inGroups). */
export const PACK_GROUP = 8192;
/**
 * Most bytes of values in one group, unless one value alone is larger: groups travel one per
 * message, far below ZeroMQ's frame limit (MAX_MESSAGE_BYTES), and far from 2^32-byte offsets.
 */
export const PACK_MAX_BYTES = 64 * 1024 * 1024;

/**
 * `list` packed in order, PACK_GROUP items at a time. A group whose text is too long for one
 * string, or whose bytes pass `maxBytes`, is halved until it fits, and the rest of the list goes
 * in groups of that size.
 */
export function inGroups<T>(list: readonly T[], pack: (group: readonly T[]) => PackedValues, maxBytes = PACK_MAX_BYTES): PackedValues[] {
  const groups: PackedValues[] = [];
  let size = PACK_GROUP;
  for (let start = 0; start < list.length; ) {
    const group = list.slice(start, start + size);
    let packed: PackedValues | undefined;
    try {
      packed = pack(group);
    } catch (error) {
      // Past V8's longest string; with one value left, that value cannot travel at all.
      if (!(error instanceof RangeError) || group.length === 1) throw error;
    }
    if (!packed || (packed.values.length > maxBytes && group.length > 1)) {
      size = Math.ceil(group.length / 2);
      continue;
    }
    groups.push(packed);
    start += group.length;
  }
  return groups;
}

/**
 * Packs values that are all plain JSON (see isPlainValue) with one JSON.stringify rather than one
 * per value: the offsets come from a scan for the list's own commas. Keep lists short (inGroups).
 */
export function packPlainValues(list: readonly unknown[]): PackedValues {
  const offsets = new Uint32Array(list.length + 1);
  if (list.length === 0) return { values: Buffer.alloc(0), offsets };
  // `[v0,v1,...]` becomes `v0,v1,...,` by dropping the bracket and overwriting the last one.
  const values = Buffer.from(JSON.stringify(list), 'utf8').subarray(1);
  values[values.length - 1] = COMMA;
  findValueEnds(values, offsets);
  return { values, offsets };
}

/** Sets offsets[1..] to where each value in `values` ends, past its comma. */
function findValueEnds(values: Buffer, offsets: Uint32Array): void {
  let depth = 0;
  let job = 1;
  for (let at = 0; at < values.length; at++) {
    const byte = values[at]!;
    if (byte === QUOTE) at = closingQuote(values, at);
    else if (byte === OPEN_BRACKET || byte === OPEN_BRACE) depth++;
    else if (byte === CLOSE_BRACKET || byte === CLOSE_BRACE) depth--;
    else if (byte === COMMA && depth === 0) offsets[job++] = at + 1;
  }
  if (job !== offsets.length) throw new Error(`packPlainValues: found ${job - 1} values in the text of ${offsets.length - 1}`);
}

/** Where the JSON string opened at `open` ends: the next quote not escaped by a backslash. */
function closingQuote(bytes: Buffer, open: number): number {
  for (let at = open; ; ) {
    at = bytes.indexOf(QUOTE, at + 1);
    let backslashes = 0;
    while (bytes[at - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/** Values `start` to `end` (exclusive) as a packing of their own: their bytes without a copy, offsets from 0. */
export function slicePacked(packed: PackedValues, start: number, end: number): PackedValues {
  if (start === 0 && end === packed.offsets.length - 1) return packed;
  const base = packed.offsets[start]!;
  const offsets = packed.offsets.slice(start, end + 1);
  for (let i = 0; i < offsets.length; i++) offsets[i] -= base;
  return { values: packed.values.subarray(base, packed.offsets[end]), offsets };
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
export function checkOffsets(packed: PackedValues): void {
  const { values, offsets } = packed;
  if (offsets[0] !== 0 || offsets[offsets.length - 1] !== values.length) throw new ProtocolError('job offsets do not span the values frame');
  for (let i = 1; i < offsets.length; i++) {
    if (offsets[i]! <= offsets[i - 1]! || values[offsets[i]! - 1] !== COMMA) throw new ProtocolError(`job ${i - 1} does not end where its offset says`);
  }
}
