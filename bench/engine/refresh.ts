/**
 * Workload 5: command('refresh') until every replacement worker has answered a job. The probe
 * jobs are `busy(2 ms)`: jobs that long are handed out two per worker, so a round of 2 per worker
 * reaches every worker (no-op jobs would all go to the first worker's large window).
 */
import type { ScatterGather } from '../../caller/index.js';

const MAX_PROBE_ROUNDS = 200;

export async function refreshMs(sg: ScatterGather, workers: number): Promise<number> {
  const before = await workerPids(sg);
  const started = performance.now();
  await sg.command('refresh');
  const answered = new Set<number>();
  for (let round = 0; answered.size < workers && round < MAX_PROBE_ROUNDS; round++) {
    const results = await sg.mapResults(
      'busy',
      Array.from({ length: 2 * workers }, () => [[2]] as [unknown[]]),
    );
    for (const { worker } of results) if (!before.has(worker.pid)) answered.add(worker.pid);
  }
  const ms = performance.now() - started;
  if (answered.size < workers) throw new Error(`only ${answered.size} of ${workers} new workers answered after refresh`);
  return ms;
}

async function workerPids(sg: ScatterGather): Promise<Set<number>> {
  const status = await sg.status();
  const servers = status.servers as Array<{ workers?: Array<{ pid: number }> }>;
  return new Set(servers.flatMap((server) => (server.workers ?? []).map(({ pid }) => pid)));
}
