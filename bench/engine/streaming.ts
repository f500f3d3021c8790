/**
 * Workload 10: results per second from a generator job (`sg.stream`), against the same number of
 * tiny jobs through `map`.
 */
import type { ScatterGather } from '../../caller/index.js';

/** Yields 0 … count-1, one small part at a time. */
export async function* countTo(count: number): AsyncGenerator<number> {
  for (let i = 0; i < count; i++) yield i;
}

export const streamingFunctions = { countTo } as const;

/** Parts per second taken with `for await` from one job yielding `parts` numbers. */
export async function streamRate(sg: ScatterGather, parts: number): Promise<number> {
  const started = performance.now();
  let expected = 0;
  for await (const part of sg.stream<number>('countTo', [parts])) {
    if (part !== expected) throw new Error(`part ${expected} came as ${String(part)}`);
    expected++;
  }
  const seconds = (performance.now() - started) / 1000;
  if (expected !== parts) throw new Error(`${expected} of ${parts} parts came`);
  return parts / seconds;
}
