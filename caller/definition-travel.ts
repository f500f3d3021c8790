/**
 * Whether a captured value can travel to the workers by value. Data does: primitives, arrays,
 * plain objects, Map, Set, Date, RegExp, Error, URL, typed arrays and buffers. An instance of any
 * other class does not: a socket, a file handle, a ScatterGather, a worker, or a class whose state
 * lives outside JavaScript would arrive as a hollow object, so it is refused at define, by name.
 */
import { SerializationError, encodeValue, type EncodedValue } from '../protocol/index.js';

const DATA_CLASSES: readonly (abstract new (...args: never[]) => unknown)[] = [Map, Set, Date, RegExp, Error, URL, ArrayBuffer];

/** Why `value` cannot travel (e.g. "'.conn' is a Socket"), or undefined when it can. */
export function whyNotData(value: unknown, path = '', seen = new Set<object>()): string | undefined {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) {
    return typeof value === 'symbol' ? `${where(path)}is a symbol` : undefined;
  }
  if (typeof value === 'function') return `${where(path)}is a function (a function travels only as a captured name of its own, not inside a value)`;
  const object = value as object;
  if (seen.has(object)) return undefined;
  seen.add(object);
  if (ArrayBuffer.isView(object)) return undefined;
  const proto = Object.getPrototypeOf(object) as object | null;
  if (Array.isArray(object) || proto === Object.prototype || proto === null) {
    for (const key of Object.keys(object)) {
      const problem = whyNotData((object as Record<string, unknown>)[key], `${path}${Array.isArray(object) ? `[${key}]` : `.${key}`}`, seen);
      if (problem) return problem;
    }
    return undefined;
  }
  if (object instanceof Map) {
    for (const [k, v] of object) {
      const problem = whyNotData(k, `${path}<key>`, seen) ?? whyNotData(v, `${path}.get(${String(k)})`, seen);
      if (problem) return problem;
    }
    return undefined;
  }
  if (object instanceof Set) {
    for (const v of object) {
      const problem = whyNotData(v, `${path}<member>`, seen);
      if (problem) return problem;
    }
    return undefined;
  }
  if (DATA_CLASSES.some((Class) => object instanceof Class)) return undefined;
  return `${where(path)}is a ${className(object)}, which holds more than data (a socket, a handle, a live object); create it inside the function instead`;
}

function where(path: string): string {
  return path ? `its part ${path} ` : 'it ';
}

function className(object: object): string {
  const name = (object as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name ? name : Object.prototype.toString.call(object).slice(8, -1);
}

/** Encodes a captured value for a DefinitionSpec (binary frames as base64), or throws a SerializationError saying why not. */
export function encodeCaptured(value: unknown, what: string): { text: string; plain: boolean; bins?: string[] } {
  const problem = whyNotData(value);
  if (problem) throw new SerializationError(problem);
  const encoded: EncodedValue = encodeValue(value, what);
  return { text: encoded.text, plain: encoded.plain, ...(encoded.bins.length > 0 ? { bins: encoded.bins.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')) } : {}) };
}
