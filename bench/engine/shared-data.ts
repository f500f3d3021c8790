/**
 * Workload 9: jobs that all read one large Float64Array. Pushed once (`sg.push`, read as
 * `shared.table`), against the same array passed in every job's arguments.
 */
import type { ScatterGather } from '../../caller/index.js';

/** Reads a few elements of the pushed table: cheap, so that moving the table is what is timed. */
export const readShared = (i: number): number => {
  const table = globalThis.shared.table as Float64Array;
  return table[0]! + table[table.length - 1]! + i;
};

/** The same read, with the table in the job's own arguments. */
export const readArgument = (table: Float64Array, i: number): number => table[0]! + table[table.length - 1]! + i;

export const sharedDataFunctions = { readShared, readArgument } as const;

/** A Float64Array of `bytes` bytes whose first and last elements the jobs check. */
export function tableOf(bytes: number): Float64Array {
  const table = new Float64Array(Math.floor(bytes / Float64Array.BYTES_PER_ELEMENT));
  table[0] = 1;
  table[table.length - 1] = 2;
  return table;
}

function check(results: unknown[], jobs: number): void {
  for (let i = 0; i < jobs; i++) if (results[i] !== 3 + i) throw new Error(`job ${i} read ${String(results[i])}, not ${3 + i}`);
}

/** Milliseconds for `push` of the table, `jobs` jobs reading it, and its `drop`. */
export async function pushOnceMs(sg: ScatterGather, table: Float64Array, jobs: number): Promise<number> {
  const started = performance.now();
  await sg.push('table', table);
  const results = await sg.map<number>(
    'readShared',
    Array.from({ length: jobs }, (_, i) => [[i]] as [unknown[]]),
  );
  const ms = performance.now() - started;
  check(results, jobs);
  await sg.drop('table');
  return ms;
}

/**
 * Milliseconds for `jobs` jobs that each carry the table in their arguments. At most `window`
 * are in flight: queued all at once, each job's encoded copy would be held in the caller
 * (10 GB for 100 jobs of 100 MB), which is not how anyone would run it.
 */
export async function perJobMs(sg: ScatterGather, table: Float64Array, jobs: number, window: number): Promise<number> {
  const started = performance.now();
  const results: number[] = new Array(jobs);
  let next = 0;
  const lane = async () => {
    while (next < jobs) {
      const i = next++;
      results[i] = await sg.submit<number>('readArgument', [table, i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, jobs) }, lane));
  const ms = performance.now() - started;
  check(results, jobs);
  return ms;
}
