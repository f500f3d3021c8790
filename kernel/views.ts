/**
 * Rendered views of the engine for notebooks: the cluster status as a table, and a Vega-Lite
 * chart of job durations per worker. Both are plain objects that carry a MIME_BUNDLE renderer,
 * so they show as a cell's value and still read as data.
 */
import type { IMimeBundle } from '@jupyterlab/nbformat';
import type { Status, WorkerStatus } from '../caller/index.js';
import { MIME_BUNDLE, type Rendered } from './format.js';

type WorkerRow = WorkerStatus;

/** What the table needs of a Status (views of partial ones, in tests, work too). */
export type StatusLike = Pick<Status, 'servers' | 'workers' | 'queued' | 'done' | 'failed'> & Partial<Status>;

/** The fields of a JobResult the chart uses. */
export interface TimedResult {
  id: number;
  ok: boolean;
  fn: string;
  worker: { server: string; host: string; id: number; pid: number };
  timings: { startedAt: number; runMs: number };
}

const escapeHtml = (text: unknown) => String(text ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function attachRenderer<T extends object>(value: T, render: () => Rendered): T {
  Object.defineProperty(value, MIME_BUNDLE, { value: render, enumerable: false, configurable: true });
  return value;
}

const rate = (worker: WorkerRow) => (worker.upMs ? ((worker.done + worker.failed) * 1000) / worker.upMs : 0);

/** Rows of the status table: one per worker, and one per server that is not connected. */
function statusRows(status: StatusLike): string[][] {
  const rows: string[][] = [];
  for (const server of status.servers) {
    const name = server.id ?? server.url ?? '?';
    if (!server.connected) {
      rows.push([name, server.host ?? '', '', '', server.refused ? `refused: ${server.refused}` : 'not connected', '', '', '', '']);
      continue;
    }
    for (const worker of server.workers ?? []) {
      rows.push([
        name,
        server.host ?? '',
        String(worker.w),
        String(worker.pid),
        worker.busy ? 'busy' : 'idle',
        String(worker.inflight),
        String(worker.done),
        String(worker.failed),
        rate(worker).toFixed(1),
      ]);
    }
  }
  return rows;
}

const HEADER = ['server', 'host', 'worker', 'pid', 'state', 'in flight', 'done', 'failed', 'jobs/s'];

function summary(status: StatusLike): string {
  const busy = status.servers.flatMap((s) => s.workers ?? []).filter((w) => w.busy).length;
  const connected = status.servers.filter((s) => s.connected).length;
  const ready = status.servers.reduce((n, s) => n + (s.spares?.ready ?? 0), 0);
  const starting = status.servers.reduce((n, s) => n + (s.spares?.starting ?? 0), 0);
  const spares = ready + starting > 0 ? `, ${ready} spare(s) ready${starting > 0 ? ` and ${starting} starting` : ''}` : '';
  return `${connected} server(s), ${status.workers} worker(s) (${busy} busy, ${status.workers - busy} idle)${spares}; jobs: ${status.done} done, ${status.failed} failed, ${status.queued} queued, ${status.inflight ?? 0} in flight, ${status.retried ?? 0} retried; ${status.ratePerSec ?? 0} jobs/s over the last 5 s`;
}

export function renderStatus(status: StatusLike): Rendered {
  const rows = statusRows(status);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const text = [summary(status), line(HEADER), ...rows.map(line)].join('\n');
  const th = HEADER.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const tr = rows
    .map(
      (r) => `<tr class="tsgather-${escapeHtml(r[4]!.split(':')[0]!.replace(/\s+/g, '-'))}">${r.map((c, i) => `<td${i >= 5 ? ' style="text-align:right"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`,
    )
    .join('');
  const html = `<div class="tsgather-status"><p>${escapeHtml(summary(status))}</p><table><thead><tr>${th}</tr></thead><tbody>${tr}</tbody></table></div>`;
  return { data: { 'text/html': html, 'text/plain': text }, metadata: {} };
}

/** The status object, unchanged as data, rendered as a table when it is a cell's value. */
export function statusView<T extends StatusLike>(status: T): T {
  return attachRenderer(status, () => renderStatus(status));
}

const workerLabel = (r: TimedResult) => `${r.worker.server}/w${r.worker.id}`;

/** A Vega-Lite spec: a timeline of each job on its worker, and the spread of run times per worker. */
export function durationsSpec(results: readonly TimedResult[]): Record<string, unknown> {
  const t0 = Math.min(...results.map((r) => r.timings.startedAt));
  const values = results.map((r) => ({
    job: r.id,
    fn: r.fn,
    ok: r.ok ? 'ok' : 'failed',
    worker: workerLabel(r),
    host: r.worker.host,
    startMs: r.timings.startedAt - t0,
    endMs: r.timings.startedAt - t0 + r.timings.runMs,
    runMs: r.timings.runMs,
  }));
  const worker = { field: 'worker', type: 'nominal', title: 'worker' };
  const color = { field: 'ok', type: 'nominal', title: 'result', scale: { domain: ['ok', 'failed'], range: ['#4c78a8', '#e45756'] } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    description: `job durations per worker (${values.length} jobs)`,
    data: { values },
    vconcat: [
      {
        title: 'jobs on each worker over time',
        width: 600,
        mark: { type: 'bar', tooltip: true },
        encoding: { y: worker, x: { field: 'startMs', type: 'quantitative', title: 'ms since the first job started' }, x2: { field: 'endMs' }, color },
      },
      {
        title: 'run time per worker',
        width: 600,
        mark: { type: 'boxplot', extent: 'min-max' },
        encoding: { y: worker, x: { field: 'runMs', type: 'quantitative', title: 'run time (ms)' } },
      },
    ],
  };
}

function durationsText(results: readonly TimedResult[]): string {
  const byWorker = new Map<string, number[]>();
  for (const r of results) byWorker.set(workerLabel(r), [...(byWorker.get(workerLabel(r)) ?? []), r.timings.runMs]);
  const lines = [...byWorker].map(([w, ms]) => {
    const sorted = [...ms].sort((a, b) => a - b);
    return `${w}: ${ms.length} job(s), median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`;
  });
  return [`<Vega-Lite chart: durations of ${results.length} job(s) on ${byWorker.size} worker(s)>`, ...lines].join('\n');
}

export interface DurationsChart {
  spec: Record<string, unknown>;
}

/** The chart for a finished batch (the JobResults from mapResults, waitForResult or poll). */
export function durationsChart(results: readonly TimedResult[]): DurationsChart {
  if (!Array.isArray(results) || results.length === 0 || !results.every((r) => r?.timings && r.worker)) {
    throw new TypeError('plotDurations(results) needs job results with timings: the array from mapResults, waitForResult or poll (not values from map)');
  }
  const chart = { spec: durationsSpec(results) };
  const data = { 'application/vnd.vegalite.v5+json': chart.spec, 'text/plain': durationsText(results) } as IMimeBundle;
  return attachRenderer(chart, () => ({ data, metadata: {} }));
}
