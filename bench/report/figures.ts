/** The shape of what every system reports per workload, as written to bench/results.json. */
import { median, percentile } from '../stats.js';

/** One measured figure: the median of `runs`, in `unit`, with the run values kept for the record. */
export interface Figure {
  value: number;
  unit: string;
  runs: number[];
  /** Jobs per run, where the job count differs between systems. */
  jobs?: number;
  /** Memory figures: the encoded size of each job's arguments, which the target does not count. */
  payloadBytes?: number;
  note?: string;
}

/** A workload that could not be measured on a system, and why. */
export interface Missing {
  missing: string;
}

export type Outcome = Figure | Missing;

/** Figures by metric key (see report/metrics.ts for the keys and their labels). */
export type SystemFigures = Partial<Record<string, Outcome>>;

export function figure(runs: number[], unit: string, extra: Partial<Figure> = {}): Figure {
  return { value: median(runs), unit, runs, ...extra };
}

export function isFigure(outcome: Outcome | undefined): outcome is Figure {
  return outcome !== undefined && 'value' in outcome && Number.isFinite(outcome.value);
}

/** The round-trip figures, p50 and p99, from each run's samples (ms). */
export function latencyFigures(figures: SystemFigures, runs: number[][], jobs: number): void {
  figures.latency_p50 = figure(
    runs.map((samples) => percentile(samples, 50)),
    'ms',
    { jobs },
  );
  figures.latency_p99 = figure(
    runs.map((samples) => percentile(samples, 99)),
    'ms',
    { jobs },
  );
}
