/** Workload 4: a large Float64Array sent as an argument and returned as the result. */
import type { ScatterGather } from '../../caller/index.js';

/** A Float64Array of `bytes` bytes with recognisable contents. */
export function payloadOf(bytes: number): Float64Array {
  const array = new Float64Array(Math.floor(bytes / Float64Array.BYTES_PER_ELEMENT));
  for (let i = 0; i < array.length; i += 4096) array[i] = i;
  return array;
}

/** Milliseconds for one round trip of `payload` through the `echo` job, checked on arrival. */
export async function echoMs(sg: ScatterGather, payload: Float64Array): Promise<number> {
  const started = performance.now();
  const back = await sg.submit<Float64Array>('echo', [payload]);
  const ms = performance.now() - started;
  if (!(back instanceof Float64Array) || back.length !== payload.length || back[4096] !== 4096) throw new Error('payload came back altered');
  return ms;
}
