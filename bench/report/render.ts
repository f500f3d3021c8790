/** The printed report: the comparison table, the targets, the machine and the notes. */
import type { BenchConfig } from '../config.js';
import type { Machine } from '../machine.js';
import { isFigure, type SystemFigures } from './figures.js';
import { markdownTable } from './markdown-table.js';
import { formatFigure, METRICS, SYSTEM_LABELS, SYSTEMS, type System } from './metrics.js';
import type { TargetCheck } from './targets.js';

/** The shared-data and streaming rows, measured on tsgather (and push/scatter on the Python systems) only. */
const DATA_METRICS = ['shared_push', 'shared_per_job', 'stream_parts', 'stream_map', 'reduce_caller', 'reduce_servers'];

/** Metrics a system has no counterpart for. */
const NOT_APPLICABLE: Partial<Record<System, string[]>> = {
  raw: ['tiny_map', 'memory_controller', 'memory_caller', 'kernel_tiny', ...DATA_METRICS],
  relay: ['tiny_map', 'refresh', 'start', 'memory_controller', 'memory_caller', 'kernel_tiny', ...DATA_METRICS],
  ipyparallel: ['memory_controller', 'memory_caller', 'kernel_tiny', 'shared_per_job', 'stream_parts', 'stream_map', 'reduce_caller', 'reduce_servers'],
  dask: ['memory_controller', 'memory_caller', 'kernel_tiny', 'shared_per_job', 'stream_parts', 'stream_map', 'reduce_caller', 'reduce_servers'],
};

export function comparisonTable(figures: Record<System, SystemFigures>): string {
  const rows = METRICS.map((metric) => [
    metric.label,
    ...SYSTEMS.map((system) => {
      if (NOT_APPLICABLE[system]?.includes(metric.key)) return 'n/a';
      const outcome = figures[system][metric.key];
      if (outcome === undefined) return 'not run';
      if (!isFigure(outcome)) return 'failed';
      const reference = figures.tsgather[metric.key];
      return formatFigure(metric, outcome, isFigure(reference) ? reference.jobs : undefined);
    }),
  ]);
  return markdownTable(['workload', ...SYSTEMS.map((s) => SYSTEM_LABELS[s])], rows);
}

export function targetsTable(checks: TargetCheck[]): string {
  const verdict = (met?: boolean) => (met === undefined ? 'not measured' : met ? 'met' : '**MISSED**');
  return markdownTable(
    ['target', 'measured', 'result'],
    checks.map((c) => [c.target, c.measured, verdict(c.met)]),
  );
}

export function machineLine(machine: Machine, versions: Record<string, string>): string {
  const extra = Object.entries(versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  return `${machine.cpu}, ${machine.cores} cores (${machine.availableParallelism} available), ${machine.memoryGiB} GiB, ${machine.os}; Node ${machine.node}, zeromq ${machine.zeromq}${extra ? `, ${extra}` : ''}`;
}

export function methodLine(config: BenchConfig): string {
  return [
    `Every figure is the median of ${config.runs} runs after one warm-up run (payload: ${config.payloadRuns} runs; memory: ${config.memoryRuns} fresh process(es); IPython Parallel and Dask: ${config.pythonRuns} runs, ${config.runs} for CPU scaling),`,
    `all on ${config.workers} workers. tsgather and raw ZeroMQ: ${config.tinyJobs.toLocaleString('en')} tiny jobs and ${config.latencyJobs.toLocaleString('en')} round trips per run;`,
    `IPython Parallel and Dask: the job counts shown as n=.`,
    `Shared data: ${config.sharedRuns} push-once/per-job pair(s) after a warm-up (IPython Parallel and Dask: ${config.pythonRuns} run(s)), ${config.sharedJobs} jobs and a ${config.sharedBytes / 1e6} MB array per run;`,
    `streaming: ${config.streamRuns} stream/map pair(s), ${config.streamParts.toLocaleString('en')} parts or jobs per run;`,
    `mapReduce: ${config.reduceRuns} caller-side/onServers pair(s) of ${config.reduceJobs.toLocaleString('en')} jobs returning ${config.reduceBytes / 1000} KB each.`,
  ].join(' ');
}
