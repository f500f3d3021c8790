/** Workloads 9 (shared data: push once vs per job) and 10 (streaming) on tsgather. */
import type { BenchConfig } from '../config.js';
import { figure, type SystemFigures } from '../report/figures.js';
import { median, repeat } from '../stats.js';
import { openSession } from './session.js';
import { perJobMs, pushOnceMs, sharedDataFunctions, tableOf } from './shared-data.js';
import { streamingFunctions, streamRate } from './streaming.js';
import { mapRate } from './throughput.js';

type Log = (line: string) => void;

/**
 * Push-once and per-job runs alternate, and their ratio is kept per pair, so that the machine's
 * drift between them does not decide it.
 */
export async function measureSharedData(config: BenchConfig, figures: SystemFigures, log: Log): Promise<void> {
  const sg = await openSession(config.workers);
  try {
    for (const [name, fn] of Object.entries(sharedDataFunctions)) await sg.define(name, fn);
    const table = tableOf(config.sharedBytes);
    const jobs = config.sharedJobs;
    const window = 2 * config.workers;
    log(`shared data: ${jobs} jobs reading a ${config.sharedBytes / 1e6} MB Float64Array, pushed once vs in each job's arguments (${window} in flight)`);
    // Warm-up: a push-once run and one per-job job per lane (a full per-job run would add ~15 s).
    await pushOnceMs(sg, table, jobs);
    await perJobMs(sg, table, window, window);
    const pairs = await repeat(config.sharedRuns, 0, async (run) => {
      if (run % 2 === 0) {
        const push = await pushOnceMs(sg, table, jobs);
        return { push, perJob: await perJobMs(sg, table, jobs, window) };
      }
      const perJob = await perJobMs(sg, table, jobs, window);
      return { perJob, push: await pushOnceMs(sg, table, jobs) };
    });
    const extra = { jobs, note: `${config.sharedBytes / 1e6} MB Float64Array` };
    figures.shared_push = figure(
      pairs.map((pair) => pair.push / 1000),
      's',
      extra,
    );
    figures.shared_per_job = figure(
      pairs.map((pair) => pair.perJob / 1000),
      's',
      { ...extra, note: `${extra.note}, at most ${window} jobs in flight` },
    );
    figures.shared_ratio = figure(
      pairs.map((pair) => pair.perJob / pair.push),
      'x',
      { note: 'each per-job run over the push-once run next to it' },
    );
  } finally {
    await sg.close();
  }
}

/** Stream and map runs alternate; their ratio is kept per pair. */
export async function measureStreaming(config: BenchConfig, figures: SystemFigures, log: Log): Promise<void> {
  const sg = await openSession(config.workers);
  try {
    for (const [name, fn] of Object.entries(streamingFunctions)) await sg.define(name, fn);
    const parts = config.streamParts;
    log(`streaming: one job yielding ${parts.toLocaleString('en')} parts (for await over sg.stream) vs ${parts.toLocaleString('en')} tiny jobs through map`);
    // A light warm-up: a full stream run would add a few seconds to the section.
    await streamRate(sg, Math.min(parts, 5_000));
    await mapRate(sg, parts);
    const pairs = await repeat(config.streamRuns, 0, async (run) => {
      if (run % 2 === 0) {
        const stream = await streamRate(sg, parts);
        return { stream, map: await mapRate(sg, parts) };
      }
      const map = await mapRate(sg, parts);
      return { map, stream: await streamRate(sg, parts) };
    });
    figures.stream_parts = figure(
      pairs.map((pair) => pair.stream),
      'parts/s',
      { jobs: parts, note: 'one generator job' },
    );
    figures.stream_map = figure(
      pairs.map((pair) => pair.map),
      'jobs/s',
      { jobs: parts },
    );
    figures.stream_vs_map = figure(
      pairs.map((pair) => pair.stream / pair.map),
      'x',
      { note: `each stream run over the map run next to it (medians ${Math.round(median(pairs.map((p) => p.stream)))} parts/s, ${Math.round(median(pairs.map((p) => p.map)))} jobs/s)` },
    );
  } finally {
    await sg.close();
  }
}
