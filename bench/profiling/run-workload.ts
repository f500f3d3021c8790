/**
 * One profiled workload in its own process tree: `run-workload.js tiny|latency|cpu <workers> <dir>`,
 * started by profile.ts with the preload in NODE_OPTIONS (without it, only the CPU split is
 * measured). Writes every process's profile before closing the engine, which SIGKILLs the
 * workers. Prints progress on stderr and a JSON summary on stdout.
 */
import { openSession } from '../engine/session.js';
import { roundTripsMs } from '../engine/latency.js';
import { calibrateSpin, parallelMs, serialMs } from '../engine/cpu-scaling.js';
import { addJobRate, mapRate } from '../engine/throughput.js';
import { median, percentile } from '../stats.js';
import { writeProfiles } from './collect.js';
import { cpuSecondsByRole } from './roles.js';

export interface WorkloadSummary {
  workload: 'tiny' | 'latency' | 'cpu';
  jobs: number;
  wallSeconds: number;
  /** CPU seconds each role used during the workload (from /proc, not sampled); for cpu, during the parallel runs only. */
  cpuSeconds: Record<string, number>;
  /** tiny: median jobs/s through addJob and map; latency: median p50 and p99 (ms); cpu: median speedup. */
  figures: Record<string, number>;
  /** Results messages that reached the caller (tiny only). */
  resultMessages?: number;
  profiles: number;
}

const RUNS = 5;
const TINY_JOBS = 100_000;
const ROUND_TRIPS = 2_000;
const CPU_JOBS = 40;
const CPU_JOB_MS = 50;

const [workload, workersText, directory] = process.argv.slice(2);
if ((workload !== 'tiny' && workload !== 'latency' && workload !== 'cpu') || !directory) throw new Error('usage: run-workload.js tiny|latency|cpu <workers> <profile dir>');

const sg = await openSession(Number(workersText));
let resultMessages = 0;
sg.on('progress', () => resultMessages++); // emitted once per results message the caller receives
try {
  const figures: Record<string, number[]> = {};
  const record = (name: string, value: number) => (figures[name] ??= []).push(value);
  const spinIterations = workload === 'cpu' ? calibrateSpin(CPU_JOB_MS) : 0;
  // The cpu workload's serial runs are the caller's own spinning, left out of the CPU split.
  const cpuSeconds = new Map<string, number>();
  let cpuBefore = cpuSecondsByRole();
  const countCpu = () => {
    for (const [role, seconds] of cpuSecondsByRole()) cpuSeconds.set(role, (cpuSeconds.get(role) ?? 0) + seconds - (cpuBefore.get(role) ?? 0));
  };
  let wallMs = 0;
  for (let run = 0; run < RUNS; run++) {
    if (workload === 'cpu') {
      const serial = serialMs(CPU_JOBS, spinIterations);
      cpuBefore = cpuSecondsByRole();
      const parallel = await parallelMs(sg, CPU_JOBS, spinIterations);
      countCpu();
      wallMs += parallel;
      record('speedup', serial / parallel);
      process.stderr.write(`${workload} run ${run + 1}/${RUNS} done\n`);
      continue;
    }
    const started = performance.now();
    cpuBefore = cpuSecondsByRole();
    if (workload === 'tiny') {
      record('addJob jobs/s', await addJobRate(sg, TINY_JOBS));
      record('map jobs/s', await mapRate(sg, TINY_JOBS));
    } else {
      const samples = await roundTripsMs(sg, ROUND_TRIPS);
      record('p50 ms', percentile(samples, 50));
      record('p99 ms', percentile(samples, 99));
    }
    countCpu();
    wallMs += performance.now() - started;
    process.stderr.write(`${workload} run ${run + 1}/${RUNS} done\n`);
  }
  const summary: WorkloadSummary = {
    workload,
    jobs: workload === 'tiny' ? 2 * RUNS * TINY_JOBS : workload === 'cpu' ? RUNS * CPU_JOBS : RUNS * ROUND_TRIPS,
    wallSeconds: wallMs / 1000,
    cpuSeconds: Object.fromEntries(cpuSeconds),
    figures: Object.fromEntries(Object.entries(figures).map(([name, values]) => [name, median(values)])),
    resultMessages: workload === 'tiny' ? resultMessages : undefined,
    profiles: await writeProfiles(directory),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} finally {
  await sg.close();
}
