/** A tsgather instance with the bench's job functions defined on every worker. */
import { spawnScatterGather, type ScatterGather } from '../../controller/index.js';
import { jobFunctions } from './job-functions.js';

export async function openSession(workers: number): Promise<ScatterGather> {
  const sg = await spawnScatterGather([], { workers, echo: false });
  for (const [name, fn] of Object.entries(jobFunctions)) await sg.define(name, fn);
  return sg;
}

/** Identical no-argument items for `count` jobs. */
export function noArgItems(count: number): Array<[unknown[]]> {
  return Array.from({ length: count }, () => [[]] as [unknown[]]);
}
