/**
 * `npm run bench`: measures tsgather against a raw ZeroMQ pipeline, IPython Parallel and Dask on
 * the same machine in one invocation, prints the comparison and the targets, and writes
 * bench/results.json. Missed targets are reported, not fatal.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArguments, type Section } from './config.js';
import { measureEngine, measureStart } from './engine/suite.js';
import { measureSharedData, measureStreaming } from './engine/data-suite.js';
import { measureMemory } from './engine/memory.js';
import { measureReduce } from './engine/reduce.js';
import { measureKernelCell } from './kernel-cell.js';
import { describeMachine } from './machine.js';
import { cpuSnapshot, foreignShare } from './interference.js';
import { descendants } from './proc.js';
import { ensurePythonPackages, runPythonBench } from './python-runner.js';
import { measureRaw } from './raw-zmq/suite.js';
import type { SystemFigures } from './report/figures.js';
import type { System } from './report/metrics.js';
import { comparisonTable, machineLine, methodLine, targetsTable } from './report/render.js';
import { checkTargets } from './report/targets.js';
import { withTimeout } from './stats.js';

const resultsPath = fileURLToPath(new URL('../../bench/results.json', import.meta.url));
const SECTION_TIMEOUT_MS: Record<Section, number> = {
  raw: 120_000,
  engine: 300_000,
  start: 120_000,
  memory: 600_000,
  kernel: 300_000,
  ipyparallel: 660_000,
  dask: 660_000,
  shared: 900_000,
  stream: 300_000,
  reduce: 300_000,
};

// `--scale` is a run of its own (bench/scale/): the controller at hundreds of servers, never part of the suite below.
if (process.argv.includes('--scale')) {
  const { runScale } = await import('./scale/main.js');
  await runScale(process.argv.slice(2).filter((arg) => arg !== '--scale'));
  process.exit(0);
}

const config = parseArguments(process.argv.slice(2));
const machine = describeMachine();
const figures: Record<System, SystemFigures> = { tsgather: {}, raw: {}, relay: {}, ipyparallel: {}, dask: {} };
const notes: string[] = [];
const versions: Record<string, string> = {};
const interference: Partial<Record<Section, number>> = {};
/** Share of the machine's CPU used by other processes above which a section's figures are flagged. */
const FOREIGN_CPU_WARNING = 0.05;
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function section(name: Section, work: () => Promise<void>): Promise<void> {
  if (!config.sections.has(name)) return;
  const started = performance.now();
  const cpuBefore = cpuSnapshot();
  try {
    await withTimeout(work(), SECTION_TIMEOUT_MS[name], name);
  } catch (error) {
    const message = (error as Error).message.split('\n')[0]!;
    notes.push(`${name}: ${message}`);
    log(`${name} FAILED: ${message}`);
  }
  const foreign = foreignShare(cpuBefore, cpuSnapshot());
  interference[name] = foreign;
  log(`${name}: ${((performance.now() - started) / 1000).toFixed(1)} s; other processes used ${(foreign * 100).toFixed(1)}% of the CPU meanwhile`);
  if (foreign > FOREIGN_CPU_WARNING) notes.push(`${name}: other processes used ${(foreign * 100).toFixed(0)}% of the machine's CPU while it ran; its figures are skewed`);
}

async function python(system: 'ipyparallel' | 'dask', unavailable: string | undefined, workloads: 'usual' | 'shared' = 'usual'): Promise<void> {
  if (unavailable) return;
  if (workloads === 'usual') log(`${system}: ${config.pythonTinyJobs.toLocaleString('en')} tiny jobs per run (start-up and restarts take a while)`);
  else log(`${system}: shared data, ${config.sharedJobs} jobs reading one ${config.sharedBytes / 1e6} MB array`);
  const run = await runPythonBench(system === 'ipyparallel' ? 'ipyparallel_bench.py' : 'dask_bench.py', {
    workers: config.workers,
    runs: config.pythonRuns,
    tiny_jobs: config.pythonTinyJobs,
    latency_jobs: config.pythonLatencyJobs,
    cpu_jobs: config.cpuJobs,
    cpu_ms: config.cpuMs,
    cpu_runs: config.runs,
    payload_bytes: config.payloadBytes,
    payload_runs: config.payloadRuns,
    workloads,
    shared_jobs: config.sharedJobs,
    shared_bytes: config.sharedBytes,
    shared_runs: config.pythonRuns,
  });
  Object.assign(figures[system], run.figures);
  Object.assign(versions, run.versions);
  if (run.leftovers > 0) notes.push(`${system}: ${run.leftovers} process(es) were still running after the script ended and were killed (log: ${run.logPath})`);
}

log(`${config.workers} workers; sections: ${[...config.sections].join(', ')}`);

await section('raw', () => measureRaw(config, figures.raw, figures.relay, log));
await section('engine', () => measureEngine(config, figures.tsgather, log, config.sections.has('raw')));
await section('start', () => measureStart(config, figures.tsgather, log));
await section('memory', () => measureMemory(config, figures.tsgather, log));
await section('kernel', () => measureKernelCell(config, figures.tsgather, log));
if (config.sections.has('ipyparallel') || config.sections.has('dask')) {
  const unavailable = ensurePythonPackages(log);
  if (unavailable) {
    notes.push(`IPython Parallel and Dask were not measured: ${unavailable}`);
    log(`IPython Parallel and Dask not measured: ${unavailable}`);
  }
  await section('ipyparallel', () => python('ipyparallel', unavailable));
  await section('dask', () => python('dask', unavailable));
}
await section('shared', async () => {
  await measureSharedData(config, figures.tsgather, log);
  if (!config.pythonForShared) return;
  const unavailable = ensurePythonPackages(log);
  if (unavailable) notes.push(`shared data on IPython Parallel and Dask not measured: ${unavailable}`);
  for (const system of ['ipyparallel', 'dask'] as const) {
    try {
      await python(system, unavailable, 'shared');
    } catch (error) {
      notes.push(`shared data on ${system}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
});
await section('stream', () => measureStreaming(config, figures.tsgather, log));
await section('reduce', () => measureReduce(config, figures.tsgather, log));

for (const [system, outcomes] of Object.entries(figures)) {
  for (const [metric, outcome] of Object.entries(outcomes)) if (outcome && 'missing' in outcome) notes.push(`${system} ${metric}: ${outcome.missing}`);
}
const targets = checkTargets(figures, config.workers);
const report = [comparisonTable(figures), '', targetsTable(targets), '', `Machine: ${machineLine(machine, versions)}.`, methodLine(config), ...notes.map((note) => `Note: ${note}`)].join('\n');
process.stdout.write(`\n${report}\n`);
const missed = targets.filter((t) => t.met === false).length;
process.stdout.write(`\n${missed === 0 ? 'every measured target met' : `${missed} target(s) MISSED`}; results in ${resultsPath}\n`);

const { sections, ...settings } = config;
writeFileSync(
  resultsPath,
  `${JSON.stringify({ generatedAt: new Date().toISOString(), machine, versions, config: { ...settings, sections: [...sections] }, systems: figures, targets, interference, notes }, null, 2)}\n`,
);

// Anything of ours still running (a section that timed out) goes with us.
for (const pid of descendants(process.pid)) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
process.exit(0);
