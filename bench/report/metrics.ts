/** The table's rows and columns: which metric, which system, and how each figure is written. */
import type { Figure } from './figures.js';

export const SYSTEMS = ['tsgather', 'raw', 'relay', 'ipyparallel', 'dask'] as const;
export type System = (typeof SYSTEMS)[number];

export const SYSTEM_LABELS: Record<System, string> = {
  tsgather: 'tsgather',
  raw: 'raw ZeroMQ (limit)',
  relay: 'raw ZeroMQ via a relay',
  ipyparallel: 'IPython Parallel',
  dask: 'Dask distributed',
};

export interface Metric {
  key: string;
  label: string;
  format(value: number): string;
}

const thousands = (value: number) => Math.round(value).toLocaleString('en');

export const METRICS: Metric[] = [
  { key: 'tiny_addjob', label: '1. tiny jobs: addJob → all results (ipp apply_async, Dask submit)', format: (v) => `${thousands(v)} jobs/s` },
  { key: 'tiny_map', label: '1. tiny jobs: map (ipp map_async, Dask map)', format: (v) => `${thousands(v)} jobs/s` },
  { key: 'latency_p50', label: '2. round trip p50 (sequential submit)', format: (v) => `${v.toFixed(3)} ms` },
  { key: 'latency_p99', label: '2. round trip p99', format: (v) => `${v.toFixed(3)} ms` },
  { key: 'cpu_speedup', label: '3. CPU scaling: 40 × 50 ms vs serial in the caller', format: (v) => `${v.toFixed(3)}×` },
  { key: 'payload', label: '4. payload: 10 MB Float64Array there and back', format: (v) => `${v.toFixed(2)} GB/s` },
  { key: 'refresh', label: '5. refresh until every worker answered again', format: (v) => `${v.toFixed(3)} s` },
  { key: 'start', label: '6. start to first result', format: (v) => `${v.toFixed(3)} s` },
  { key: 'memory_controller', label: '7. memory per queued tiny job: controller child RSS', format: (v) => `${thousands(v)} B` },
  { key: 'memory_caller', label: '7. memory per queued tiny job: caller RSS', format: (v) => `${thousands(v)} B` },
  { key: 'kernel_tiny', label: '8. tiny jobs through a kernel cell', format: (v) => `${thousands(v)} jobs/s` },
  { key: 'shared_push', label: '9. shared data: push a 100 MB array once + 100 jobs read it (ipp push, Dask scatter broadcast)', format: (v) => `${v.toFixed(2)} s` },
  { key: 'shared_per_job', label: "9. shared data: the 100 MB array in each of 100 jobs' arguments", format: (v) => `${v.toFixed(2)} s` },
  { key: 'stream_parts', label: '10. streaming: parts of one generator job (for await over sg.stream)', format: (v) => `${thousands(v)} parts/s` },
  { key: 'stream_map', label: '10. streaming: the same number of tiny jobs through map', format: (v) => `${thousands(v)} jobs/s` },
  { key: 'reduce_caller', label: '11. mapReduce: 2,000 × 100 KB Float64Array summed in the caller', format: (v) => `${v.toFixed(2)} s` },
  { key: 'reduce_servers', label: '11. mapReduce: the same, onServers (partials to the caller)', format: (v) => `${v.toFixed(2)} s` },
];

export function formatFigure(metric: Metric, figure: Figure, referenceJobs?: number): string {
  const text = metric.format(figure.value);
  return figure.jobs !== undefined && referenceJobs !== undefined && figure.jobs !== referenceJobs ? `${text} (n=${thousands(figure.jobs)})` : text;
}
