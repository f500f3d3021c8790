/** What the bench runs and how often, from the command line: `npm run bench -- [--quick] [--workers N] [--only a,b] [--no-python]`. */
import os from 'node:os';
import { flagsOf, onlySections, positive } from './arguments.js';

export const SECTIONS = ['raw', 'engine', 'start', 'memory', 'kernel', 'ipyparallel', 'dask', 'shared', 'stream', 'reduce'] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchConfig {
  workers: number;
  /** Measured runs per figure (the figure is their median), after one warm-up run. */
  runs: number;
  tinyJobs: number;
  latencyJobs: number;
  cpuJobs: number;
  cpuMs: number;
  payloadBytes: number;
  payloadRuns: number;
  memoryJobs: number;
  memoryRuns: number;
  /** Job counts for IPython Parallel and Dask, which manage a few hundred jobs per second. */
  pythonTinyJobs: number;
  pythonLatencyJobs: number;
  pythonRuns: number;
  /** Shared data: jobs per run, the array's size, and push-once/per-job pairs on tsgather (Python: pythonRuns). */
  sharedJobs: number;
  sharedBytes: number;
  sharedRuns: number;
  /** Streaming: parts yielded by the one generator job, and tiny jobs through map, per run; stream/map pairs. */
  streamParts: number;
  streamRuns: number;
  /** mapReduce of large results: jobs per run, bytes of each job's result, caller-side/onServers pairs. */
  reduceJobs: number;
  reduceBytes: number;
  reduceRuns: number;
  /** The shared-data section runs IPython Parallel and Dask too, unless --no-python. */
  pythonForShared: boolean;
  sections: Set<Section>;
}

const FULL: Omit<BenchConfig, 'workers' | 'sections' | 'pythonForShared'> = {
  runs: 5,
  tinyJobs: 100_000,
  latencyJobs: 2_000,
  cpuJobs: 40,
  cpuMs: 50,
  payloadBytes: 10_000_000,
  payloadRuns: 9,
  memoryJobs: 1_000_000,
  memoryRuns: 3,
  pythonTinyJobs: 2_000,
  pythonLatencyJobs: 500,
  pythonRuns: 3,
  sharedJobs: 100,
  sharedBytes: 100_000_000,
  // Each per-job run moves 10 GB (about 15 s here): two pairs keep the section near a minute.
  sharedRuns: 2,
  streamParts: 100_000,
  streamRuns: 3,
  reduceJobs: 2_000,
  reduceBytes: 100_000,
  reduceRuns: 3,
};

/** A fast pass for checking the bench itself; its figures are not for the record. */
const QUICK: Partial<BenchConfig> = {
  runs: 2,
  tinyJobs: 20_000,
  latencyJobs: 500,
  payloadRuns: 3,
  memoryJobs: 200_000,
  memoryRuns: 1,
  pythonTinyJobs: 300,
  pythonLatencyJobs: 100,
  pythonRuns: 1,
  sharedJobs: 20,
  sharedBytes: 10_000_000,
  sharedRuns: 1,
  streamParts: 20_000,
  streamRuns: 1,
  reduceJobs: 500,
  reduceRuns: 1,
};

export function parseArguments(argv: string[]): BenchConfig {
  const config: BenchConfig = { ...FULL, workers: os.availableParallelism(), pythonForShared: true, sections: new Set(SECTIONS) };
  for (const { flag, value } of flagsOf(argv)) {
    if (flag === '--quick') Object.assign(config, QUICK);
    else if (flag === '--workers') config.workers = positive(flag, value());
    else if (flag === '--runs') config.runs = positive(flag, value());
    else if (flag === '--no-python') {
      config.sections.delete('ipyparallel');
      config.sections.delete('dask');
      config.pythonForShared = false;
    } else if (flag === '--only') config.sections = onlySections(value(), SECTIONS);
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write(
        `usage: npm run bench -- [--quick] [--workers N] [--runs N] [--only ${SECTIONS.join(',')}] [--no-python]\n       npm run bench -- --scale --help   (the scale run: hundreds of simulated servers)\n`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${flag}; try --help`);
  }
  return config;
}
