/** Workload 2: sequential single jobs with submit; the round-trip time of each, in milliseconds. */
import type { ScatterGather } from '../../caller/index.js';

export async function roundTripsMs(sg: ScatterGather, jobs: number): Promise<number[]> {
  const samples = new Array<number>(jobs);
  for (let i = 0; i < jobs; i++) {
    const started = performance.now();
    await sg.submit('noop', []);
    samples[i] = performance.now() - started;
  }
  return samples;
}
