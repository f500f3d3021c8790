/**
 * Values on the wire: a value that plain JSON carries exactly travels as its own JSON text (the
 * common case for tiny jobs: no superjson walk, no wrapper object to build or parse). Anything
 * else travels as superjson's `{ json, meta }` tree, with every TypedArray, ArrayBuffer, DataView
 * and Buffer lifted out into its own binary frame (no base64, no copy on send). Which of the two
 * a value is travels beside it (EncodedValue.plain).
 */
import SuperJSON from 'superjson';

/** One encoded value: its JSON text when `plain`, else the JSON text of `{ json, meta? }`, plus the binary frames it refers to by index. */
export interface EncodedValue {
  text: string;
  bins: Uint8Array[];
  plain: boolean;
}

/** The parsed form of `EncodedValue.text`. */
export interface EncodedTree {
  json: unknown;
  meta?: unknown;
}

export class SerializationError extends TypeError {
  override name = 'SerializationError';
}

const binaryKinds = {
  Buffer: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  Uint8Array: (b: Uint8Array) => b,
  Int8Array: aligned(Int8Array),
  Uint8ClampedArray: aligned(Uint8ClampedArray),
  Int16Array: aligned(Int16Array),
  Uint16Array: aligned(Uint16Array),
  Int32Array: aligned(Int32Array),
  Uint32Array: aligned(Uint32Array),
  Float32Array: aligned(Float32Array),
  Float64Array: aligned(Float64Array),
  BigInt64Array: aligned(BigInt64Array),
  BigUint64Array: aligned(BigUint64Array),
  DataView: (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength),
  ArrayBuffer: (b: Uint8Array) => copyOut(b),
} as const;
type BinaryKind = keyof typeof binaryKinds;

interface TypedArrayCtor<T> {
  BYTES_PER_ELEMENT: number;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
}

/** Views on the received frame when its offset allows (zero copy), a copy when it does not. */
function aligned<T>(Ctor: TypedArrayCtor<T>) {
  return (b: Uint8Array): T => {
    const size = Ctor.BYTES_PER_ELEMENT;
    const source = b.byteOffset % size === 0 ? b : new Uint8Array(copyOut(b));
    return new Ctor(source.buffer, source.byteOffset, source.byteLength / size);
  };
}

function copyOut(b: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(b.byteLength);
  new Uint8Array(out).set(b);
  return out;
}

function binaryKind(value: ArrayBufferView | ArrayBuffer): BinaryKind {
  if (value instanceof ArrayBuffer) return 'ArrayBuffer';
  if (Buffer.isBuffer(value)) return 'Buffer';
  const name = value.constructor.name;
  if (name in binaryKinds) return name as BinaryKind;
  throw new SerializationError(`binary type ${name} cannot be sent`);
}

function asBytes(value: ArrayBufferView | ArrayBuffer): Uint8Array {
  return value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

// superjson transformers are synchronous, so the frames of the value being (de)coded can live here.
let outgoingBins: Uint8Array[] = [];
let incomingBins: Uint8Array[] = [];

const codec = new SuperJSON();
codec.allowErrorProps('stack', 'code', 'cause');
codec.registerCustom<ArrayBufferView | ArrayBuffer, [number, string]>(
  {
    isApplicable: (v): v is ArrayBufferView | ArrayBuffer => ArrayBuffer.isView(v) || v instanceof ArrayBuffer,
    serialize: (v) => {
      const kind = binaryKind(v);
      outgoingBins.push(asBytes(v));
      return [outgoingBins.length - 1, kind];
    },
    deserialize: ([index, kind]) => {
      const frame = incomingBins[index];
      const rebuild = binaryKinds[kind as BinaryKind];
      if (!frame || !rebuild) throw new SerializationError(`value refers to missing binary frame ${index} (${kind})`);
      return rebuild(frame);
    },
  },
  'bin',
);

const refusedTags = new Set(['[object Promise]', '[object WeakMap]', '[object WeakSet]', '[object WeakRef]']);

/** Thrown inside the walk; the path to the culprit is put together on the way out, so a value that can travel builds no path strings. */
class Refusal {
  readonly steps: string[] = [];
  constructor(readonly problem: string) {}
}

function within(error: unknown, step: string): unknown {
  if (error instanceof Refusal) error.steps.push(step);
  return error;
}

/**
 * Walks the value once: throws a Refusal on what cannot travel (functions, symbols, promises,
 * weak collections) and reports whether plain JSON carries it exactly.
 */
function isPlainJson(value: unknown, ancestors: object[]): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'undefined':
    case 'bigint':
      return false;
    case 'function':
      throw new Refusal('is a function, which cannot be sent; define() it on the workers and pass its name instead');
    case 'symbol':
      throw new Refusal('is a symbol, which cannot be sent');
  }
  if (value === null) return true;
  const object = value as object;
  const array = Array.isArray(object);
  // Arrays and plain objects (most of what travels) cannot be binary or refused: skip those checks.
  const proto = array ? undefined : Object.getPrototypeOf(object);
  if (!array && proto !== Object.prototype && proto !== null) {
    if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) return false;
    const tag = Object.prototype.toString.call(object);
    if (refusedTags.has(tag)) throw new Refusal(`is a ${tag.slice(8, -1)}, which cannot be sent`);
  }
  if (ancestors.includes(object)) return false;
  ancestors.push(object);
  let plain = true;
  try {
    if (array) {
      for (let i = 0; i < object.length; i++) {
        const item: unknown = object[i];
        if (item === undefined && !(i in object)) {
          plain = false;
          continue;
        }
        try {
          if (!isPlainJson(item, ancestors)) plain = false;
        } catch (error) {
          throw within(error, `[${i}]`);
        }
      }
    } else if (object instanceof Map) {
      plain = false;
      for (const [k, v] of object) {
        try {
          isPlainJson(k, ancestors);
        } catch (error) {
          throw within(error, '<key>');
        }
        try {
          isPlainJson(v, ancestors);
        } catch (error) {
          throw within(error, `.get(${String(k)})`);
        }
      }
    } else if (object instanceof Set) {
      plain = false;
      for (const v of object) {
        try {
          isPlainJson(v, ancestors);
        } catch (error) {
          throw within(error, '<member>');
        }
      }
    } else if (object instanceof Date || object instanceof RegExp || object instanceof Error) {
      plain = false;
    } else {
      if (proto !== Object.prototype && proto !== null) plain = false;
      for (const key of Object.keys(object)) {
        try {
          if (!isPlainJson((object as Record<string, unknown>)[key], ancestors)) plain = false;
        } catch (error) {
          throw within(error, `.${key}`);
        }
      }
    }
  } finally {
    ancestors.pop();
  }
  return plain;
}

/**
 * The objects on the path being walked, for spotting cycles: one array for every walk (a Set
 * here, long-lived and churned, would leave a promoted hash table behind on every call). A walk
 * started from inside another (a getter that encodes) gets its own.
 */
const sharedAncestors: object[] = [];
let walking = false;

function plainJson(value: unknown, what: string, index?: number): boolean {
  const nested = walking;
  const ancestors = nested ? [] : sharedAncestors;
  walking = true;
  try {
    return isPlainJson(value, ancestors);
  } catch (error) {
    if (error instanceof Refusal) throw new SerializationError(`${index === undefined ? what : `${what} ${index}`}${error.steps.reverse().join('')} ${error.problem}`);
    throw error;
  } finally {
    walking = nested;
    if (!nested && sharedAncestors.length > 0) sharedAncestors.length = 0; // only after a refusal unwound
  }
}

/**
 * Whether `JSON.stringify` carries the value exactly (else it needs superjson); throws a
 * SerializationError naming the part that cannot travel at all.
 */
export function isPlainValue(value: unknown, what = 'value', index?: number): boolean {
  return value === null || (value !== undefined && plainJson(value, what, index));
}

/** The frames of every value without any: one shared, frozen empty list rather than one per value. */
export const NO_FRAMES = Object.freeze([]) as unknown as Uint8Array[];

/** `undefined` (what a void job returns): the tree with no json, which decodes to undefined without superjson. */
const UNDEFINED: EncodedValue = Object.freeze({ text: '{}', bins: NO_FRAMES, plain: false });
/** `null`, the commonest result, needs no walk and no new object. */
const NULL: EncodedValue = Object.freeze({ text: 'null', bins: NO_FRAMES, plain: true });

/**
 * Encodes a value for the wire, or throws a SerializationError naming the part that cannot travel.
 * `what`, with `index` when given ('job 3'), names the value; that name is built only for an error.
 */
export function encodeValue(value: unknown, what = 'value', index?: number): EncodedValue {
  if (value === undefined) return UNDEFINED;
  if (value === null) return NULL;
  if (plainJson(value, what, index)) return { text: JSON.stringify(value), bins: NO_FRAMES, plain: true };
  outgoingBins = [];
  try {
    const tree = codec.serialize(value);
    return { text: JSON.stringify(tree), bins: outgoingBins, plain: false };
  } finally {
    outgoingBins = [];
  }
}

/** Decodes a parsed `{ json, meta }` tree with the binary frames that came with it. */
export function decodeTree(tree: EncodedTree, bins: Uint8Array[] = []): unknown {
  if (tree.meta === undefined) return tree.json;
  incomingBins = bins;
  try {
    return codec.deserialize(tree as Parameters<typeof codec.deserialize>[0]);
  } finally {
    incomingBins = [];
  }
}

/** Decodes a value already parsed from its JSON text: itself when it was plain, else a tree. */
export function decodeParsed(parsed: unknown, plain: boolean, bins?: Uint8Array[]): unknown {
  return plain ? parsed : decodeTree(parsed as EncodedTree, bins);
}

export function decodeValue(encoded: EncodedValue): unknown {
  return decodeParsed(JSON.parse(encoded.text), encoded.plain, encoded.bins);
}

/** The parts of an Error worth sending: a remote error arrives as a plain object with these. */
export interface RemoteErrorInfo {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

export function describeError(error: unknown): RemoteErrorInfo {
  if (error instanceof Error) {
    const info: RemoteErrorInfo = { name: error.name, message: error.message, stack: error.stack };
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') info.code = code;
    return info;
  }
  return { name: 'NonErrorThrown', message: `a non-Error value was thrown: ${safeString(error)}` };
}

function safeString(value: unknown): string {
  try {
    return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}
