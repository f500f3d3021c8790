/**
 * sg.scatter / sg.gather: an array split here in one contiguous part per worker up, each part
 * encoded once; and the parts gathered back, decoded and joined in order into one array of the
 * kind scattered (an Array, or a TypedArray of the same type).
 */
import { decodeParsed, encodeValue, readJson, type CallerToController, type Frames, type ScatterPart } from '../protocol/index.js';

type TypedArray = Exclude<NodeJS.TypedArray, DataView>;
type TypedArrayClass = { new (length: number): TypedArray };

/** The scatter request's frames: head (id filled in by Requests), then per part its text and binary frames. */
export function scatterMessage(name: string, array: unknown, workers: number): { head: Extract<CallerToController, { t: 'scatter' }>; rest: Frames } {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) throw new TypeError('scatter needs a name of 1 to 256 characters');
  if (!Array.isArray(array) && !(ArrayBuffer.isView(array) && !(array instanceof DataView))) throw new TypeError(`scatter('${name}') needs an Array or a TypedArray`);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`scatter('${name}'): no worker is up`);
  const parts: ScatterPart[] = [];
  const rest: Frames = [];
  const length = (array as ArrayLike<unknown>).length;
  for (let i = 0; i < workers; i++) {
    // Contiguous parts whose lengths differ by one at most.
    const start = Math.floor((i * length) / workers);
    const end = Math.floor(((i + 1) * length) / workers);
    const part = (array as unknown[] | TypedArray).slice(start, end);
    const encoded = encodeValue(part, `part ${i} of '${name}'`);
    parts.push([i, encoded.plain, 1 + encoded.bins.length]);
    rest.push(encoded.text, ...encoded.bins);
  }
  return { head: { t: 'scatter', id: 0, name, parts }, rest };
}

/** The gather reply's frames, [ScatterPart[] as JSON, ...their frames], decoded and joined. */
export function joinParts(name: string, reply: Buffer[]): unknown[] | TypedArray {
  const [meta, ...frames] = reply;
  const parts = readJson<ScatterPart[]>(meta, 'gathered parts');
  let at = 0;
  const values = parts.map(([, plain, count]) => {
    const [text, ...bins] = frames.slice(at, at + count);
    at += count;
    return decodeParsed(JSON.parse(text?.toString('utf8') ?? 'null'), plain, bins);
  });
  if (values.every((value) => Array.isArray(value))) return (values as unknown[][]).flat(1);
  const first = values[0];
  if (ArrayBuffer.isView(first) && !(first instanceof DataView) && values.every((value) => value?.constructor === first.constructor)) {
    const typed = values as TypedArray[];
    const joined = new (first.constructor as TypedArrayClass)(typed.reduce((n, part) => n + part.length, 0));
    let offset = 0;
    for (const part of typed) {
      (joined as { set(from: ArrayLike<unknown>, offset: number): void }).set(part as ArrayLike<unknown>, offset);
      offset += part.length;
    }
    return joined;
  }
  throw new TypeError(`gather('${name}'): the parts are no longer all Arrays or all TypedArrays of one type (jobs replaced them), so they cannot be joined`);
}
