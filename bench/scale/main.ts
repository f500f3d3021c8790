/**
 * `npm run bench -- --scale`: the controller at the size users grow into, measured side by side
 * in one run against simulated servers (sim/) that speak the real protocol, with one real server
 * of real workers as the baseline and 32 real servers of one worker beside 32 simulated ones to
 * tie the simulation to reality. Prints the tables and the targets, writes bench/scale-results.json.
 * Never run by the tests or CI: it takes minutes and the whole machine.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeMachine } from '../machine.js';
import { cpuSnapshot, foreignShare } from '../interference.js';
import { descendants } from '../proc.js';
import { summarizeProfiles } from '../profiling/summarize.js';
import { machineLine } from '../report/render.js';
import { withTimeout } from '../stats.js';
import { withCluster } from './cluster.js';
import { parseScaleArguments, type ScaleSection } from './config.js';
import { measureFairness } from './fairness.js';
import { measureLoss } from './loss.js';
import { measureMemory } from './memory.js';
import { measureRawFloor } from './raw-floor.js';
import { measureRefresh } from './refresh.js';
import { checkScaleTargets, measuresTable, scalingLines, sizesTable, targetsTable } from './report.js';
import { emptyResults } from './results.js';
import { measureSize, type SizeSpec } from './size-run.js';

const resultsPath = fileURLToPath(new URL('../../../bench/scale-results.json', import.meta.url));
const SECTION_TIMEOUT_MS = 900_000;
/** The lost-server measure: a short heartbeat, so that it takes seconds. */
const LOSS_HEARTBEAT = { heartbeatMs: 250, heartbeatTimeoutMs: 1000 };

export async function runScale(argv: string[]): Promise<void> {
  const config = parseScaleArguments(argv);
  const machine = describeMachine();
  const results = emptyResults();
  const log = (line: string) => process.stderr.write(`bench --scale: ${line}\n`);
  const largest = Math.max(...config.sizes);
  const each = config.workersPerServer;
  const sim = (servers: number, workersEach = each): SizeSpec => ({ label: `${servers} × ${workersEach} sim`, kind: 'sim', servers, workersEach, processes: config.simProcesses });

  async function section(name: ScaleSection, work: () => Promise<void>): Promise<void> {
    if (!config.sections.has(name)) return;
    const started = performance.now();
    const cpuBefore = cpuSnapshot();
    try {
      await withTimeout(work(), SECTION_TIMEOUT_MS, name);
    } catch (error) {
      const message = (error as Error).message.split('\n')[0]!;
      results.notes.push(`${name}: ${message}`);
      log(`${name} FAILED: ${message}`);
    }
    const foreign = foreignShare(cpuBefore, cpuSnapshot());
    log(`${name}: ${((performance.now() - started) / 1000).toFixed(1)} s; other processes used ${(foreign * 100).toFixed(0)}% of the machine meanwhile`);
    if (foreign > 0.05) results.notes.push(`${name}: other processes used ${(foreign * 100).toFixed(0)}% of the machine's CPU while it ran`);
  }

  log(`${config.workers} cores; ${config.simProcesses} load-generator process(es); sizes ${config.sizes.join(', ')} × ${each}; sections ${[...config.sections].join(', ')}`);
  const sizeSettings = { tinyJobs: config.tinyJobs, tinyRuns: config.tinyRuns, idleSeconds: config.idleSeconds, statusCalls: config.statusCalls };

  const profileDir = config.profile ? mkdtempSync(join(os.tmpdir(), 'tsg-scale-profile-')) : undefined;
  await section('sizes', async () => {
    results.sizes.push(await measureSize({ label: `1 × ${config.workers} real`, kind: 'real', servers: 1, workersEach: config.workers, processes: 1 }, sizeSettings, log));
    for (const servers of config.sizes) results.sizes.push(await measureSize(sim(servers), { ...sizeSettings, profileDir: servers === largest ? profileDir : undefined }, log));
  });
  await section('memory', async () => {
    for (const workersEach of [1, each]) {
      const figures = await measureMemory({ kind: 'sim', servers: largest, workersEach, processes: config.simProcesses }, log);
      results.memory.push({ label: `${largest} × ${workersEach} sim`, figures });
    }
  });
  await section('floor', async () => {
    for (const exchanges of [12, 40, 600]) results.floor.push(await measureRawFloor(largest, exchanges, config.idleSeconds, 1000));
  });
  await section('loss', async () => {
    results.loss.push(
      await measureLoss(
        {
          label: `${largest} × ${each} + 1 × 100 sim`,
          kind: 'sim',
          servers: largest,
          workersEach: each,
          lostWorkers: 100,
          processes: config.simProcesses,
          jobMs: 1000,
          backlog: true,
          ...LOSS_HEARTBEAT,
        },
        log,
      ),
    );
  });
  await section('refresh', async () => {
    const figures = await withCluster({ kind: 'sim', servers: largest, workersEach: each, processes: config.simProcesses }, (controller) => measureRefresh(controller.sg, largest * each));
    log(`refresh ${largest} × ${each} sim: every worker answered again after ${Math.round(figures.answeredMs)} ms`);
    results.refresh.push({ label: `${largest} × ${each} sim (refork 15–30 ms, a spare promoted)`, figures });
  });
  await section('fairness', async () => {
    const servers = Math.min(128, largest);
    results.fairness.push(
      await measureFairness({ label: `${servers} × ${each} sim`, kind: 'sim', servers, workersEach: each, processes: config.simProcesses, jobMs: 50, seconds: config.fairnessSeconds }, log),
    );
  });
  await section('real', async () => {
    const n = config.realServers;
    for (const kind of ['real', 'sim'] as const) {
      const label = `${n} × 1 ${kind}`;
      results.real.sizes.push(await measureSize({ label, kind, servers: n, workersEach: 1, processes: config.simProcesses }, sizeSettings, log));
      results.real.loss.push(
        await measureLoss({ label: `${n} × 1 + 1 × 4 ${kind}`, kind, servers: n, workersEach: 1, lostWorkers: 4, processes: config.simProcesses, jobMs: 200, backlog: false, ...LOSS_HEARTBEAT }, log),
      );
      const refresh = await withCluster({ kind, servers: n, workersEach: 1, processes: config.simProcesses }, (controller) => measureRefresh(controller.sg, n));
      log(`refresh ${label}: every worker answered again after ${Math.round(refresh.answeredMs)} ms`);
      results.real.refresh.push({ label, figures: refresh });
      results.real.fairness.push(await measureFairness({ label, kind, servers: n, workersEach: 1, processes: config.simProcesses, jobMs: 50, seconds: config.fairnessSeconds }, log));
    }
  });

  const targets = checkScaleTargets(results);
  const baseline = results.sizes.find((s) => s.kind === 'real');
  const report = [
    sizesTable(results.sizes, baseline),
    '',
    results.real.sizes.length ? sizesTable(results.real.sizes) : '',
    '',
    measuresTable(results),
    '',
    targetsTable(targets),
    '',
    ...scalingLines(results, config),
    ...(profileDir ? ['', `The controller at ${largest} × ${each}, all its life (profile in ${profileDir}):`, '', summarizeProfiles(profileDir, 20)] : []),
    `Machine: ${machineLine(machine, {})}; load average ${machine.loadAtStart.toFixed(1)} at the start.`,
    ...results.notes.map((note) => `Note: ${note}`),
  ].join('\n');
  process.stdout.write(`\n${report}\n`);
  const missed = targets.filter((t) => t.met === false).length;
  process.stdout.write(`\n${missed === 0 ? 'every measured target met' : `${missed} target(s) MISSED`}; results in ${resultsPath}\n`);
  const { sections, ...settings } = config;
  writeFileSync(resultsPath, `${JSON.stringify({ generatedAt: new Date().toISOString(), machine, config: { ...settings, sections: [...sections] }, results, targets }, null, 2)}\n`);
  for (const pid of descendants(process.pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}
