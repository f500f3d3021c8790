/**
 * Workload 11: mapReduce of large results (a Float64Array histogram per job), folded in the caller
 * against folded on the servers first (`onServers`), in alternating pairs.
 */
import type { ScatterGather } from '../../caller/index.js';
import type { BenchConfig } from '../config.js';
import { figure, type SystemFigures } from '../report/figures.js';
import { median, repeat } from '../stats.js';
import { openSession } from './session.js';

type Log = (line: string) => void;

/** A histogram of `length` bins with one bin set: each job's large result. */
export function histogram(i: number, length: number): Float64Array {
  const h = new Float64Array(length);
  h[i % length] = 1;
  return h;
}

function addInto(into: Float64Array, h: Float64Array): Float64Array {
  for (let k = 0; k < into.length; k++) into[k]! += h[k]!;
  return into;
}

/** Milliseconds for `jobs` histograms of `length` bins to be summed, and the partials the caller got. */
async function reduceMs(sg: ScatterGather, jobs: number, length: number, onServers: boolean): Promise<{ ms: number; partials: number }> {
  const items = Array.from({ length: jobs }, (_, i) => [[i, length]] as [number[]]);
  const partials = sg.progress.partials ?? 0;
  const started = performance.now();
  const total = await sg.mapReduce('histogram', items, addInto, new Float64Array(length), onServers ? { onServers: true } : {});
  const ms = performance.now() - started;
  const sum = total.reduce((a, b) => a + b, 0);
  if (sum !== jobs) throw new Error(`the histograms summed to ${sum}, not ${jobs}`);
  return { ms, partials: (sg.progress.partials ?? 0) - partials };
}

export async function measureReduce(config: BenchConfig, figures: SystemFigures, log: Log): Promise<void> {
  const sg = await openSession(config.workers);
  try {
    await sg.define('histogram', histogram);
    const jobs = config.reduceJobs;
    const length = Math.round(config.reduceBytes / 8);
    log(`reduce: ${jobs.toLocaleString('en')} jobs each returning a ${config.reduceBytes / 1000} KB Float64Array, summed in the caller vs on the servers first`);
    await reduceMs(sg, jobs, length, false);
    await reduceMs(sg, jobs, length, true);
    const pairs = await repeat(config.reduceRuns, 0, async (run) => {
      if (run % 2 === 0) {
        const caller = await reduceMs(sg, jobs, length, false);
        return { caller, servers: await reduceMs(sg, jobs, length, true) };
      }
      const servers = await reduceMs(sg, jobs, length, true);
      return { servers, caller: await reduceMs(sg, jobs, length, false) };
    });
    const note = `${config.reduceBytes / 1000} KB Float64Array per job`;
    figures.reduce_caller = figure(
      pairs.map((pair) => pair.caller.ms / 1000),
      's',
      { jobs, note },
    );
    figures.reduce_servers = figure(
      pairs.map((pair) => pair.servers.ms / 1000),
      's',
      { jobs, note: `${note}; median ${median(pairs.map((pair) => pair.servers.partials))} partials to the caller` },
    );
    figures.reduce_ratio = figure(
      pairs.map((pair) => pair.caller.ms / pair.servers.ms),
      'x',
      { note: 'each caller-side run over the onServers run next to it' },
    );
  } finally {
    await sg.close();
  }
}
