/** Workload 1: many no-op jobs, all results back, through addJob + waitForResult and through map. */
import type { ScatterGather } from '../../caller/index.js';
import { noArgItems } from './session.js';

/** Jobs per second for `jobs` no-op jobs queued with addJob and gathered with waitForResult({ all: true }). */
export async function addJobRate(sg: ScatterGather, jobs: number): Promise<number> {
  const items = noArgItems(jobs);
  const started = performance.now();
  sg.addJob('noop', items);
  const results = await sg.waitForResult({ all: true });
  const seconds = (performance.now() - started) / 1000;
  if (results.length !== jobs || results.some((r) => !r.ok)) throw new Error(`addJob: expected ${jobs} good results, got ${results.length}`);
  return jobs / seconds;
}

/** Jobs per second for `jobs` no-op jobs through map (values in input order). */
export async function mapRate(sg: ScatterGather, jobs: number): Promise<number> {
  const items = noArgItems(jobs);
  const started = performance.now();
  const values = await sg.map('noop', items);
  const seconds = (performance.now() - started) / 1000;
  if (values.length !== jobs) throw new Error(`map: expected ${jobs} values, got ${values.length}`);
  return jobs / seconds;
}
