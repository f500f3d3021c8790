/** The "limit" column: the raw ZeroMQ pipeline on the workloads it can stand in for. */
import type { BenchConfig } from '../config.js';
import { figure, latencyFigures, type SystemFigures } from '../report/figures.js';
import { repeat } from '../stats.js';
import { calibrateSpin, serialMs } from '../engine/cpu-scaling.js';
import { RawPipeline } from './pipeline.js';

/** Jobs per batch and batches in flight per worker. Batches of 4,096 (the engine's largest window) or 4 in flight measured no faster here. */
export const RAW_BATCH = 1024;
export const RAW_WINDOW = 2;
/** CPU-bound jobs queued at each worker: what tsgather's controller gives a worker for jobs of ~50 ms. */
const RAW_SPIN_WINDOW = 2;

type Log = (line: string) => void;

export async function measureRaw(config: BenchConfig, figures: SystemFigures, relayFigures: SystemFigures, log: Log): Promise<void> {
  log(`raw ZeroMQ: start, ${config.tinyJobs.toLocaleString('en')} tiny jobs, latency, CPU scaling, payload, refresh; then all but start and refresh through a relay`);
  const startRuns = await repeat(config.runs, 1, async () => {
    const started = performance.now();
    const pipeline = await RawPipeline.start(config.workers);
    await pipeline.roundTrip();
    const ms = performance.now() - started;
    await pipeline.close();
    return ms;
  });
  figures.start = figure(
    startRuns.map((ms) => ms / 1000),
    's',
    { note: 'fork the workers, first answer' },
  );

  const pipeline = await RawPipeline.start(config.workers);
  try {
    await measureTraffic(pipeline, config, figures);
    const refreshRuns = await repeat(config.runs, 1, async () => {
      const started = performance.now();
      await pipeline.refresh();
      return performance.now() - started;
    });
    figures.refresh = figure(
      refreshRuns.map((ms) => ms / 1000),
      's',
      { note: 'kill and refork the workers, each answers a job' },
    );
  } finally {
    await pipeline.close();
  }

  const relayed = await RawPipeline.start(config.workers, { relay: true });
  try {
    await measureTraffic(relayed, config, relayFigures);
  } finally {
    await relayed.close();
  }
}

/** Jobs per second for `jobs` no-op jobs through the raw pipeline (workload 1). */
export async function rawTinyRate(pipeline: RawPipeline, jobs: number): Promise<number> {
  const started = performance.now();
  await pipeline.runBatched(jobs, RAW_BATCH, RAW_WINDOW);
  return jobs / ((performance.now() - started) / 1000);
}

/** Workloads 1–4 on a raw pipeline, direct or relayed. */
async function measureTraffic(pipeline: RawPipeline, config: BenchConfig, figures: SystemFigures): Promise<void> {
  const tinyRuns = await repeat(config.runs, 1, () => rawTinyRate(pipeline, config.tinyJobs));
  figures.tiny_addjob = figure(tinyRuns, 'jobs/s', { jobs: config.tinyJobs, note: `JSON batches of ${RAW_BATCH}, ${RAW_WINDOW} in flight per worker` });

  const latencyRuns = await repeat(config.runs, 1, async () => {
    const samples: number[] = [];
    for (let i = 0; i < config.latencyJobs; i++) {
      const started = performance.now();
      await pipeline.roundTrip();
      samples.push(performance.now() - started);
    }
    return samples;
  });
  latencyFigures(figures, latencyRuns, config.latencyJobs);

  // As the engine's: serial and parallel interleaved, each pair's ratio kept.
  const iterations = calibrateSpin(config.cpuMs);
  const cpuPairs = await repeat(config.runs, 1, async () => {
    const serial = serialMs(config.cpuJobs, iterations);
    const started = performance.now();
    await pipeline.runSpins(config.cpuJobs, iterations, RAW_SPIN_WINDOW);
    return serial / (performance.now() - started);
  });
  figures.cpu_speedup = figure(cpuPairs, 'x', { jobs: config.cpuJobs, note: `one job to a message, ${RAW_SPIN_WINDOW} queued per worker` });

  const payload = new Uint8Array(config.payloadBytes);
  const payloadRuns = await repeat(config.payloadRuns, 1, async () => {
    const started = performance.now();
    const back = await pipeline.echo(payload);
    if (back.length !== payload.length) throw new Error('raw payload came back short');
    return performance.now() - started;
  });
  figures.payload = figure(
    payloadRuns.map((ms) => (2 * payload.byteLength) / 1e9 / (ms / 1000)),
    'GB/s',
  );
}
