/**
 * Two producers at once: two real controllers (two callers, each with its controller child), every
 * server dialling both, each with far more jobs queued than it can finish. Each one's share of the
 * workers' time is reckoned over every 1 s window (sliding by 100 ms) from when both had work
 * running, from the start and run time of every result. Fairness is the servers' doing: each
 * worker's FairQueue (server/fair-queue.ts) picks the next job between sessions; simulated
 * workers run that same FairQueue, and real ones do it for real.
 */
import type { JobResult, ScatterGather } from '../../caller/index.js';
import { openController, realServers, simServers, freePort, type Controller, type Servers } from './cluster.js';
import { serversOf } from './sim/fleet.js';

export interface FairnessSpec {
  label: string;
  kind: 'sim' | 'real';
  servers: number;
  workersEach: number;
  processes: number;
  jobMs: number;
  seconds: number;
}

export interface FairnessFigures {
  label: string;
  workers: number;
  jobMs: number;
  /** A's share of the workers' time in each 1 s window (B's is the rest). */
  shares: number[];
  /** The worst window: how far A's share strayed from ½, as a fraction of ½. */
  worstDeviation: number;
  /** Jobs each finished in the windows. */
  jobs: [number, number];
}

const WINDOW_MS = 1000;
const STEP_MS = 100;

export async function measureFairness(spec: FairnessSpec, log: (line: string) => void): Promise<FairnessFigures> {
  const workers = spec.servers * spec.workersEach;
  let a: Controller;
  let b: Controller;
  let servers: Servers;
  if (spec.kind === 'sim') {
    a = await openController();
    b = await openController();
    servers = await simServers({ servers: serversOf(spec.servers, spec.workersEach), controllers: [a.address, b.address], processes: spec.processes });
  } else {
    const ports = [await freePort(), await freePort()];
    servers = await realServers(
      spec.servers,
      spec.workersEach,
      ports.map((port) => `tcp://127.0.0.1:${port}`),
    );
    a = await openController({ port: ports[0] });
    b = await openController({ port: ports[1] });
  }
  try {
    await Promise.all([a.watch.until(workers, 60_000), b.watch.until(workers, 60_000)]);
    // Each has work for the whole run even if it had every worker to itself.
    const count = Math.ceil((workers * spec.seconds * 1000) / spec.jobMs);
    const items = Array.from({ length: count }, () => [[spec.jobMs]] as [number[]]);
    a.sg.addJob('sleep', items);
    b.sg.addJob('sleep', items);
    const [mine, theirs] = await Promise.all([collectFor(a.sg, spec.seconds * 1000), collectFor(b.sg, spec.seconds * 1000)]);
    const from = Math.max(Math.min(...mine.map(startOf)), Math.min(...theirs.map(startOf)));
    // The last window ends before either stopped collecting (results still held by workers would be missing).
    const to = Math.min(Math.max(...mine.map(endOf)), Math.max(...theirs.map(endOf))) - 2 * spec.jobMs;
    const shares: number[] = [];
    for (let start = from; start + WINDOW_MS <= to; start += STEP_MS) {
      const own = busyWithin(mine, start, start + WINDOW_MS);
      const other = busyWithin(theirs, start, start + WINDOW_MS);
      shares.push(own / Math.max(own + other, 1e-9));
    }
    const worstDeviation = Math.max(...shares.map((share) => Math.abs(share - 0.5) / 0.5));
    log(`${spec.label}: A's share over ${shares.length} windows ${Math.min(...shares).toFixed(3)}–${Math.max(...shares).toFixed(3)}; worst ${(worstDeviation * 100).toFixed(1)}% off equal`);
    return { label: spec.label, workers, jobMs: spec.jobMs, shares, worstDeviation, jobs: [mine.length, theirs.length] };
  } finally {
    await Promise.all([a.sg.close(), b.sg.close()]);
    await servers.stop();
  }
}

const startOf = (r: JobResult) => r.timings.startedAt;
const endOf = (r: JobResult) => r.timings.startedAt + r.timings.runMs;

/** Results of the caller's addJob calls for `ms`. */
async function collectFor(sg: ScatterGather, ms: number): Promise<JobResult[]> {
  const results: JobResult[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) results.push(...(await sg.waitForResult({ timeout: 50 })));
  return results;
}

/** Milliseconds of run time of `results` within [from, to). */
function busyWithin(results: JobResult[], from: number, to: number): number {
  let ms = 0;
  for (const r of results) ms += Math.max(0, Math.min(endOf(r), to) - Math.max(startOf(r), from));
  return ms;
}
