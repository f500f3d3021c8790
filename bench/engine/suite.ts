/** Workloads 1–6 on tsgather: one session for the steady-state workloads, fresh ones for start-up. */
import type { BenchConfig } from '../config.js';
import { figure, latencyFigures, type SystemFigures } from '../report/figures.js';
import { median, repeat } from '../stats.js';
import { calibrateSpin, parallelMs, serialMs } from './cpu-scaling.js';
import { roundTripsMs } from './latency.js';
import { echoMs, payloadOf } from './payload.js';
import { refreshMs } from './refresh.js';
import { openSession, settle } from './session.js';
import { startToFirstResultMs } from './start.js';
import { addJobRate, mapRate } from './throughput.js';
import { RawPipeline } from '../raw-zmq/pipeline.js';
import { rawTinyRate } from '../raw-zmq/suite.js';

type Log = (line: string) => void;

/**
 * `pairWithRaw`: each addJob run is paired with a run of the raw pipeline (started beside the
 * engine), and their ratio is kept per pair. Where the machine's speed drifts (by up to a third
 * within a minute on the VM this was built on), a ratio of two medians measured a minute apart
 * says more about the drift than about the engine.
 */
export async function measureEngine(config: BenchConfig, figures: SystemFigures, log: Log, pairWithRaw = false): Promise<void> {
  const sg = await openSession(config.workers);
  let raw: RawPipeline | undefined;
  try {
    raw = pairWithRaw ? await startRawForPairs(config.workers, log) : undefined;
    log(`tiny jobs: ${config.tinyJobs.toLocaleString('en')} per run through addJob${raw ? ' (each paired with a raw pipeline run)' : ''}, then map`);
    const tinyRuns = await repeat(config.runs, 1, async (run) => {
      if (!raw) return { rate: await addJobRate(sg, config.tinyJobs), rawRate: undefined };
      // Which goes first alternates, so that neither always inherits the other's garbage.
      if (run % 2 === 0) {
        const rawRate = await rawTinyRate(raw, config.tinyJobs);
        return { rawRate, rate: await addJobRate(sg, config.tinyJobs) };
      }
      const rate = await addJobRate(sg, config.tinyJobs);
      return { rate, rawRate: await rawTinyRate(raw, config.tinyJobs) };
    });
    figures.tiny_addjob = figure(
      tinyRuns.map((run) => run.rate),
      'jobs/s',
      { jobs: config.tinyJobs },
    );
    if (raw)
      figures.tiny_addjob_vs_raw = figure(
        tinyRuns.map((run) => run.rate / run.rawRate!),
        'x',
        { note: 'each addJob run over the raw pipeline run next to it' },
      );
    figures.tiny_map = figure(await repeat(config.runs, 1, () => mapRate(sg, config.tinyJobs)), 'jobs/s', { jobs: config.tinyJobs });

    log(`latency: ${config.latencyJobs.toLocaleString('en')} sequential submits per run`);
    const latencyRuns = await repeat(config.runs, 1, () => roundTripsMs(sg, config.latencyJobs));
    latencyFigures(figures, latencyRuns, config.latencyJobs);

    log(`CPU scaling: ${config.cpuJobs} jobs of ~${config.cpuMs} ms`);
    const iterations = calibrateSpin(config.cpuMs);
    // Serial and parallel runs interleaved, so a slower or faster spell of the machine affects both sides.
    const pairs = await repeat(config.runs, 1, async () => ({ serial: serialMs(config.cpuJobs, iterations), parallel: await parallelMs(sg, config.cpuJobs, iterations) }));
    const serial = pairs.map((pair) => pair.serial);
    const parallel = pairs.map((pair) => pair.parallel);
    figures.cpu_speedup = figure(
      pairs.map((pair) => pair.serial / pair.parallel),
      'x',
      {
        jobs: config.cpuJobs,
        note: `serial ${Math.round(median(serial))} ms in the caller, ${Math.round(median(parallel))} ms on ${config.workers} workers`,
      },
    );

    log(`payload: ${config.payloadBytes / 1e6} MB Float64Array there and back`);
    const payload = payloadOf(config.payloadBytes);
    const payloadRuns = await repeat(config.payloadRuns, 1, () => echoMs(sg, payload));
    figures.payload = figure(
      payloadRuns.map((ms) => (2 * payload.byteLength) / 1e9 / (ms / 1000)),
      'GB/s',
    );

    // A notebook refreshes now and then, not in a loop: each timed refresh finds the engine at rest,
    // its spares replaced after the last one. Back-to-back refreshes are measured too, and noted.
    log('refresh: until every new worker has answered; each at rest, then back to back');
    const refreshRuns = await repeat(config.runs, 1, async () => {
      await settle(sg);
      return refreshMs(sg, config.workers);
    });
    const backToBack = await repeat(config.runs, 0, () => refreshMs(sg, config.workers));
    figures.refresh = figure(
      refreshRuns.map((ms) => ms / 1000),
      's',
      {
        note: `refresh, then busy(2 ms) probes until each new worker answered; each run at rest (back to back: ${(median(backToBack) / 1000).toFixed(3)} s, its spares still starting)`,
      },
    );
  } finally {
    await raw?.close();
    await sg.close();
  }
}

/** The raw pipeline beside the engine; when it cannot start, addJob runs unpaired and the check falls back to the raw section's median. */
async function startRawForPairs(workers: number, log: Log): Promise<RawPipeline | undefined> {
  try {
    return await RawPipeline.start(workers);
  } catch (error) {
    log(`raw pipeline for pairing did not start (${(error as Error).message}); addJob runs unpaired`);
    return undefined;
  }
}

export async function measureStart(config: BenchConfig, figures: SystemFigures, log: Log): Promise<void> {
  log('start: spawnScatterGather → define → first result');
  const runs = await repeat(config.runs, 1, () => startToFirstResultMs(config.workers));
  figures.start = figure(
    runs.map((ms) => ms / 1000),
    's',
    { note: 'define included' },
  );
}
