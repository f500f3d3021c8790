/** The printed report of a `--scale` run: the tables side by side, the targets as ratios within the run, and how it scales with cores. */
import { markdownTable } from '../report/markdown-table.js';
import { median } from '../stats.js';
import type { ScaleConfig } from './config.js';
import type { ScaleResults } from './results.js';
import type { SizeFigures } from './size-run.js';

export interface ScaleTarget {
  target: string;
  measured: string;
  met?: boolean;
}

const thousands = (v: number) => Math.round(v).toLocaleString('en');
const ms = (v: number) => `${thousands(v)} ms`;
const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

export const tinyOf = (size: SizeFigures) => ({
  jobsPerSec: median(size.tiny.map((r) => r.jobs / r.seconds)),
  controllerUs: median(size.tiny.map((r) => (r.controllerCpu * 1e6) / r.jobs)),
  callerUs: median(size.tiny.map((r) => (r.callerCpu * 1e6) / r.jobs)),
  serversUs: median(size.tiny.map((r) => (r.serversCpu * 1e6) / r.jobs)),
  /** The controller's CPU as a share of one core while it ran tiny jobs. */
  controllerCore: median(size.tiny.map((r) => r.controllerCpu / r.seconds)),
});

/** One column per size: the storm, status, idle cost and tiny jobs. */
export function sizesTable(sizes: SizeFigures[], baseline?: SizeFigures): string {
  const base = baseline ? tinyOf(baseline).controllerUs : undefined;
  const rows: Array<[string, (s: SizeFigures) => string]> = [
    ['workers', (s) => thousands(s.workers)],
    ['tiny jobs (map of no-ops), jobs/s', (s) => thousands(tinyOf(s).jobsPerSec)],
    ['controller CPU per tiny job', (s) => `${tinyOf(s).controllerUs.toFixed(2)} µs`],
    ['… against the 2-real-worker baseline', (s) => (base ? `${(tinyOf(s).controllerUs / base).toFixed(2)}×` : 'n/a')],
    ['caller / servers CPU per tiny job', (s) => `${tinyOf(s).callerUs.toFixed(2)} / ${tinyOf(s).serversUs.toFixed(2)} µs`],
    ['controller busy while tiny jobs ran (one core = 100%)', (s) => `${(tinyOf(s).controllerCore * 100).toFixed(0)}%`],
    ['dial → every worker up (connect storm)', (s) => ms(s.joinMs)],
    ['dial → every server answered a job', (s) => ms(s.servingMs)],
    ['status() round trip (its size)', (s) => `${s.statusMs.toFixed(1)} ms (${Math.round(s.statusBytes / 1024)} KB)`],
    ['idle, every server connected: controller CPU (one core)', (s) => pct(s.idleControllerCore)],
    ['idle: the servers’ processes’ CPU', (s) => pct(s.idleServersCore)],
  ];
  return markdownTable(
    ['measure', ...sizes.map((s) => s.label)],
    rows.map(([label, show]) => [label, ...sizes.map(show)]),
  );
}

/** The one-off measures at the largest size, and the 32-server comparison of simulated and real. */
export function measuresTable(results: ScaleResults): string {
  const rows: string[][] = [];
  for (const { label, figures } of results.memory) {
    rows.push([
      `memory per server, ${label}`,
      `${kb(figures.bytesPerServer)}; live after GC ${kb(figures.liveBytesPerServer)}, of it V8 heap ${kb(figures.heapBytesPerServer)} (${kb(figures.heapBytesPerServer / figures.workersEach)} per slot)`,
    ]);
  }
  const [one, eight] = [results.memory.find((m) => m.figures.workersEach === 1), results.memory.find((m) => m.figures.workersEach === 8)];
  if (one && eight) rows.push(['memory per worker slot (8 against 1 a server)', kb((eight.figures.liveBytesPerServer - one.figures.liveBytesPerServer) / 7)]);
  for (const floor of results.floor) {
    rows.push([
      `raw ZeroMQ ROUTER, ${floor.connections} connections, ${floor.exchanges} messages each way`,
      `${kb(floor.bytesPerConnection)} per connection; a ping and its answer a second each: ${pct(floor.idleCore)} of a core`,
    ]);
  }
  for (const loss of [...results.loss, ...results.real.loss]) {
    rows.push([
      `lost server, ${loss.label} (${thousands(loss.workers)} workers, ${loss.jobMs} ms jobs, timeout ${loss.heartbeatTimeoutMs} ms)`,
      `${loss.lostJobs} jobs: all requeued after ${ms(loss.requeuedMs)} of silence (the caller heard after ${ms(loss.eventMs)}); all sent elsewhere after ${ms(loss.dispatchedMs)}, all running there after ${ms(loss.runningMs)}`,
    ]);
  }
  for (const { label, figures } of [...results.refresh, ...results.real.refresh]) {
    rows.push([`refresh, ${label}`, `command ${ms(figures.commandMs)}; every worker answered again after ${ms(figures.answeredMs)}`]);
  }
  for (const fair of [...results.fairness, ...results.real.fairness]) {
    rows.push([
      `two producers, ${fair.label} (${fair.jobMs} ms jobs)`,
      `A's share ${Math.min(...fair.shares).toFixed(3)}–${Math.max(...fair.shares).toFixed(3)} over ${fair.shares.length} 1 s windows; worst ${(fair.worstDeviation * 100).toFixed(1)}% off equal`,
    ]);
  }
  return markdownTable(['measure', 'figure'], rows);
}

export function checkScaleTargets(results: ScaleResults): ScaleTarget[] {
  const baseline = results.sizes.find((s) => s.kind === 'real');
  const largest = results.sizes.filter((s) => s.kind === 'sim').sort((a, b) => b.workers - a.workers)[0];
  const checks: ScaleTarget[] = [];
  const add = (target: string, measured: string | undefined, met: boolean | undefined) => checks.push({ target, measured: measured ?? 'not measured', met: measured === undefined ? undefined : met });
  if (baseline && largest) {
    const ratio = tinyOf(largest).controllerUs / tinyOf(baseline).controllerUs;
    add(
      `controller CPU per job at ${thousands(largest.workers)} workers ≤ 1.5× at ${baseline.workers} workers`,
      `${ratio.toFixed(2)}× (${tinyOf(largest).controllerUs.toFixed(2)} µs vs ${tinyOf(baseline).controllerUs.toFixed(2)} µs)`,
      ratio <= 1.5,
    );
    const core = tinyOf(largest).controllerCore;
    add(
      `throughput at ${thousands(largest.workers)} workers bounded by the load generator, not the controller (controller < 90% of its core)`,
      `controller ${(core * 100).toFixed(0)}% of a core at ${thousands(tinyOf(largest).jobsPerSec)} jobs/s`,
      core < 0.9,
    );
  } else add('controller CPU per job at 4,000 workers ≤ 1.5× at 2 workers', undefined, undefined);
  const memory = results.memory.find((m) => m.figures.workersEach === 8) ?? results.memory[0];
  add(
    '≤ 64 KB of controller memory per connected server',
    memory && `${kb(memory.figures.liveBytesPerServer)} live per server (${memory.label}), of it ${kb(memory.figures.heapBytesPerServer)} the controller's own heap`,
    memory && memory.figures.liveBytesPerServer <= 64 * 1024,
  );
  const idle = largest;
  add(`idle heartbeat cost with ${idle ? thousands(idle.servers) : 500} servers ≤ 2% of one core`, idle && pct(idle.idleControllerCore), idle && idle.idleControllerCore <= 0.02);
  add(
    `${idle ? thousands(idle.servers) : 500} servers joined and serving ≤ 2 s after they start dialling`,
    idle && `${ms(idle.servingMs)} (every worker up after ${ms(idle.joinMs)})`,
    idle && idle.servingMs <= 2000,
  );
  const loss = results.loss[0];
  add(
    "a lost 100-worker server's jobs all requeued within the heartbeat timeout + 50 ms",
    loss && `${ms(loss.requeuedMs)} of silence (timeout ${ms(loss.heartbeatTimeoutMs)}); running elsewhere ${ms(loss.runningMs)} after it went quiet`,
    loss && loss.requeuedMs <= loss.heartbeatTimeoutMs + 50,
  );
  for (const fair of [results.fairness[0], results.real.fairness.find((f) => f.label.includes('real'))]) {
    if (!fair && checks.some((c) => c.target.startsWith('fair share'))) continue;
    add(
      `fair share between two producers within 10% of equal over any 1 s window${fair ? ` (${fair.label})` : ''}`,
      fair && `worst window ${(fair.worstDeviation * 100).toFixed(1)}% off`,
      fair && fair.worstDeviation <= 0.1,
    );
  }
  return checks;
}

export function targetsTable(checks: ScaleTarget[]): string {
  const verdict = (met?: boolean) => (met === undefined ? 'not measured' : met ? 'met' : '**MISSED**');
  return markdownTable(
    ['target', 'measured', 'result'],
    checks.map((c) => [c.target, c.measured, verdict(c.met)]),
  );
}

/** How the figures scale with cores: what the controller alone would allow, against what this machine gave. */
export function scalingLines(results: ScaleResults, config: ScaleConfig): string[] {
  const largest = results.sizes.filter((s) => s.kind === 'sim').sort((a, b) => b.workers - a.workers)[0];
  if (!largest) return [];
  const tiny = tinyOf(largest);
  const ceiling = 1e6 / tiny.controllerUs;
  const perJob = tiny.controllerUs + tiny.callerUs + tiny.serversUs;
  return [
    `Cores: ${config.workers} (--workers); the load generator ran in ${config.simProcesses} process(es).`,
    `At ${thousands(largest.workers)} workers every tiny job cost ${perJob.toFixed(2)} µs of CPU over the caller (${tiny.callerUs.toFixed(2)}), the controller (${tiny.controllerUs.toFixed(2)}) and the simulated servers (${tiny.serversUs.toFixed(2)}).`,
    `The controller alone would run out of its one core at about ${thousands(ceiling)} jobs/s; this run made ${thousands(tiny.jobsPerSec)} jobs/s (${((100 * tiny.jobsPerSec) / ceiling).toFixed(0)}% of that), and ${config.workers} cores allow at most about ${thousands((config.workers * 1e6) / perJob)} jobs/s for all three.`,
  ];
}
