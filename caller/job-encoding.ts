/**
 * The caller's encoding of jobs: every item is checked and encoded before any is queued, so one
 * that cannot travel throws at once, naming the item, and nothing is queued.
 */
import { encodeValue, inGroups, isPlainValue, MAX_FUNCTION_NAME, MAX_MESSAGE_BYTES, packPlainValues, packValues, SerializationError, type PackedValues } from '../protocol/index.js';
import type { JobItem } from './types.js';

/** Encoded items: their texts packed in groups (inGroups), their binary frames in order, and each one's frame count when any has frames. */
export interface EncodedItems {
  count: number;
  groups: PackedValues[];
  bins: Uint8Array[];
  nbins?: number[];
}

/** Checks every item in order, then packs them: a group at a time with one JSON.stringify when all are plain JSON, else one by one. */
export function encodeItems(name: string, items: JobItem[]): EncodedItems {
  // The items themselves unless one needs trimming: a copy filled one by one would be a holey
  // array, which JSON.stringify walks on its slow path.
  let values: unknown[] = items;
  let plain = true;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (!Array.isArray(item) || !Array.isArray(item[0]) || item.length > 2 || (item[1] !== undefined && (typeof item[1] !== 'object' || item[1] === null || Array.isArray(item[1])))) {
      throw new TypeError(`addJob('${name}'): item ${i} must be [args array, kwargs object?], e.g. [[1000], { bins: 10 }]`);
    }
    if (item.length === 2 && item[1] === undefined) {
      if (values === items) values = items.slice();
      values[i] = [item[0]];
    }
    if (!isPlainValue(values[i], 'job', i)) plain = false; // walked on regardless: what cannot travel is reported in item order
  }
  if (plain) return checkFrameSizes(name, { count: items.length, groups: inGroups(values, packPlainValues), bins: [] });
  const texts = new Array<string>(items.length);
  const bins: Uint8Array[] = [];
  let nbins: number[] | undefined;
  for (let i = 0; i < items.length; i++) {
    const encoded = encodeValue(values[i], 'job', i);
    texts[i] = encoded.text;
    if (encoded.bins.length > 0) {
      nbins ??= new Array<number>(items.length).fill(0);
      nbins[i] = encoded.bins.length;
      for (const bin of encoded.bins) bins.push(bin);
    }
  }
  return checkFrameSizes(name, { count: items.length, groups: inGroups(texts, packValues), bins, nbins });
}

/**
 * A frame over ZeroMQ's limit would cost the link its connection and the message: refused here,
 * with the job it belongs to. Groups hold one value only when that value alone is that large.
 */
function checkFrameSizes(name: string, encoded: EncodedItems): EncodedItems {
  const tooLarge = (index: number, bytes: number, what: string) =>
    new SerializationError(`addJob('${name}'): job ${index}'s ${what} is ${Math.round(bytes / 1048576)} MB encoded; one frame carries at most ${MAX_MESSAGE_BYTES / 1048576} MB`);
  let index = 0;
  for (const group of encoded.groups) {
    if (group.values.length > MAX_MESSAGE_BYTES) throw tooLarge(index, group.values.length, 'arguments');
    index += group.offsets.length - 1;
  }
  let bin = 0;
  for (let i = 0; encoded.nbins && i < encoded.count; i++) {
    for (let end = bin + encoded.nbins[i]!; bin < end; bin++) {
      if (encoded.bins[bin]!.byteLength > MAX_MESSAGE_BYTES) throw tooLarge(i, encoded.bins[bin]!.byteLength, 'binary value');
    }
  }
  return encoded;
}

/** addJob's arguments: `(name, items)`, or `(items)` for the default function (a server URL's path). */
export function jobArguments(defaultFunction: string | undefined, nameOrItems: string | JobItem[], maybeItems?: JobItem[]): { name: string; items: JobItem[] } {
  const name = typeof nameOrItems === 'string' ? nameOrItems : defaultFunction;
  const items = typeof nameOrItems === 'string' ? maybeItems : nameOrItems;
  if (!name) throw new TypeError('addJob needs a function name (or a server URL whose path names one)');
  checkFunctionName(name, 'addJob');
  if (!Array.isArray(items)) throw new TypeError(`addJob('${name}', items): items must be an array of [args, kwargs?]`);
  return { name, items };
}

export function checkFunctionName(name: unknown, call: string): void {
  if (typeof name !== 'string' || name === '') throw new TypeError(`${call}() needs a function name`);
  if (name.length > MAX_FUNCTION_NAME) throw new TypeError(`${call}(): a function name is at most ${MAX_FUNCTION_NAME} characters (got ${name.length})`);
}

/** The sum of `values[start..end)`. */
export function sum(values: number[], start: number, end: number): number {
  let total = 0;
  for (let i = start; i < end; i++) total += values[i]!;
  return total;
}
