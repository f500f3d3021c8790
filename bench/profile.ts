/**
 * `node dist/bench/profile.js [workers] [tiny|latency|cpu …]`: where the engine's time goes in
 * workload 1 (tiny jobs), 2 (round trips) and 3 (CPU scaling). Each workload runs twice in its own process tree: once plain, for
 * each process's CPU time from /proc, and once with every process (caller, controller, server,
 * workers) under V8's sampling profiler, for the functions with the most self time. Profiles stay
 * in /tmp; open them in Chrome DevTools or speedscope for call trees.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkloadSummary } from './profiling/run-workload.js';
import { summarizeProfiles } from './profiling/summarize.js';
import { markdownTable } from './report/markdown-table.js';

const preload = new URL('./profiling/preload.js', import.meta.url).href;
const runner = fileURLToPath(new URL('./profiling/run-workload.js', import.meta.url));
const workers = process.argv[2] ?? String(os.availableParallelism());
const RUN_TIMEOUT_MS = 300_000;
const WORKLOADS = {
  tiny: 'Workload 1: tiny jobs (5 × 100,000 through addJob, then 5 × 100,000 through map)',
  latency: 'Workload 2: round trips (5 × 2,000 sequential submits)',
  cpu: 'Workload 3: CPU scaling (5 × 40 jobs of ~50 ms through map; the CPU split counts the map runs only, not the serial runs in the caller)',
};

function run(workload: keyof typeof WORKLOADS, directory: string, profiled: boolean): Promise<WorkloadSummary> {
  return new Promise((resolve, reject) => {
    const env = profiled ? { ...process.env, BENCH_PROFILE_DIR: directory, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${preload}`.trim() } : process.env;
    const child = spawn(process.execPath, [runner, workload, workers, directory], { stdio: ['ignore', 'pipe', 'inherit'], env });
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${workload} run exited with ${code}`));
      resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as WorkloadSummary);
    });
  });
}

function cpuTable(summary: WorkloadSummary): string {
  const total = Object.values(summary.cpuSeconds).reduce((a, b) => a + b, 0);
  const rows = Object.entries(summary.cpuSeconds).map(([role, seconds]) => [role, seconds.toFixed(2), `${((100 * seconds) / total).toFixed(0)}%`, ((seconds * 1e6) / summary.jobs).toFixed(1)]);
  rows.push(['all', total.toFixed(2), '100%', ((total * 1e6) / summary.jobs).toFixed(1)]);
  const capacity = summary.wallSeconds * os.cpus().length;
  return [
    markdownTable(['process', 'CPU s', 'share', 'CPU µs per job'], rows),
    '',
    `${summary.wallSeconds.toFixed(2)} s wall on ${os.cpus().length} cores: the engine used ${((100 * total) / capacity).toFixed(0)}% of the machine.`,
    `Figures (median of runs): ${Object.entries(summary.figures)
      .map(([name, value]) => `${name} ${value < 10 ? value.toFixed(3) : Math.round(value).toLocaleString('en')}`)
      .join(', ')}.`,
    summary.resultMessages ? `${summary.resultMessages.toLocaleString('en')} result messages reached the caller: ${(summary.jobs / summary.resultMessages).toFixed(1)} jobs per message.` : '',
  ].join('\n');
}

// `profile.js [workers] [workload …]`: all three when none is named.
const chosen = process.argv.slice(3).filter((name): name is keyof typeof WORKLOADS => {
  if (name in WORKLOADS) return true;
  throw new Error(`unknown workload '${name}': choose from ${Object.keys(WORKLOADS).join(', ')}`);
});
for (const workload of chosen.length ? chosen : (Object.keys(WORKLOADS) as Array<keyof typeof WORKLOADS>)) {
  const directory = mkdtempSync(join(os.tmpdir(), `tsg-profile-${workload}-`));
  process.stderr.write(`${workload}: plain run for the CPU split, then a profiled run into ${directory}\n`);
  const plain = await run(workload, directory, false);
  const profiled = await run(workload, directory, true);
  process.stdout.write(
    [
      `\n## ${WORKLOADS[workload]}, ${workers} workers\n`,
      '### CPU time per process (plain run, from /proc)\n',
      cpuTable(plain),
      `\n### Self time per function (profiled run: ${profiled.profiles} processes; profiles in ${directory})\n`,
      'Sampled time counts a process as busy while it has code on the stack, including while it waits for a core.\n',
      summarizeProfiles(directory),
    ].join('\n'),
  );
}
