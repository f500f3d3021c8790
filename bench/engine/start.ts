/** Workload 6: spawnScatterGather() until the first result is back (define included), then close (not timed). */
import { spawnScatterGather } from '../../caller/index.js';
import { noop } from './job-functions.js';

export async function startToFirstResultMs(workers: number): Promise<number> {
  const started = performance.now();
  const sg = await spawnScatterGather([], { workers, echo: false });
  try {
    await sg.define('noop', noop);
    await sg.submit('noop', []);
    return performance.now() - started;
  } finally {
    await sg.close();
  }
}
