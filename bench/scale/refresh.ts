/**
 * `command('refresh')` across every server, at rest: the time until every worker has answered a
 * job again, as the main bench's workload 5 measures it. Simulated workers come back after a
 * refork time drawn from what a real server takes to promote a loaded spare (about 20 ms here).
 */
import type { ScatterGather } from '../../caller/index.js';
import type { Status } from '../../protocol/status.js';
import { sleep } from '../stats.js';

const MAX_PROBE_ROUNDS = 200;
const SETTLE_TIMEOUT_MS = 30_000;

export interface RefreshFigures {
  /** Until the refresh command returned, and until every new worker answered a job. */
  commandMs: number;
  answeredMs: number;
  workers: number;
}

/** Every server at rest: a loaded spare per worker and none starting (as the main bench's settle()). */
export async function settleSpares(sg: ScatterGather): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  const atRest = (status: Status) => status.servers.every((s) => !s.connected || (s.spares?.starting === 0 && s.spares.ready >= (s.workers?.length ?? 0)));
  while (!atRest(await sg.status())) {
    if (Date.now() > deadline) throw new Error('the spare workers never all loaded');
    await sleep(100);
  }
}

export async function measureRefresh(sg: ScatterGather, workers: number): Promise<RefreshFigures> {
  await settleSpares(sg);
  const before = new Set((await sg.status()).servers.flatMap((s) => (s.workers ?? []).map((w) => `${s.id}/${w.pid}`)));
  const started = performance.now();
  await sg.command('refresh');
  const commandMs = performance.now() - started;
  const answered = new Set<string>();
  for (let round = 0; answered.size < workers && round < MAX_PROBE_ROUNDS; round++) {
    // 2 ms jobs go two to a worker, so a round of 2 per worker reaches every worker (see bench/engine/refresh.ts).
    const results = await sg.mapResults(
      'sleep',
      Array.from({ length: 2 * workers }, () => [[2]] as [number[]]),
    );
    for (const { worker } of results) {
      const key = `${worker.server}/${worker.pid}`;
      if (!before.has(key)) answered.add(key);
    }
  }
  const answeredMs = performance.now() - started;
  if (answered.size < workers) throw new Error(`only ${answered.size} of ${workers} new workers answered after refresh`);
  return { commandMs, answeredMs, workers };
}
