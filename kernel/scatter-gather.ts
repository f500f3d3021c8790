/**
 * In the cell worker: the `tsgather` engine as notebooks see it. spawnScatterGather is wrapped so
 * that job output shows up in the running cell (tagged by worker), waiting shows a live progress
 * display updated in place, `sg.status()` renders as a table, `sg.plotDurations(results)` draws
 * a Vega-Lite chart, and every instance is closed when the kernel shuts down.
 */
import type { IMimeBundle } from '@jupyterlab/nbformat';
import type { Display, DisplayHandle } from './display.js';
import type { StreamName } from './worker-messages.js';
import type { Progress } from '../caller/index.js';
import { durationsChart, statusView, type StatusLike, type TimedResult } from './views.js';

export interface JobOutput {
  job: number;
  worker: number | string;
  server?: string;
  host?: string;
  stream: StreamName;
  text: string;
}

type Listener = (payload: never) => void;

interface ScatterGatherLike {
  on(event: string, listener: Listener): unknown;
  off?(event: string, listener: Listener): unknown;
  removeListener?(event: string, listener: Listener): unknown;
  close(): unknown;
  [method: string]: unknown;
}

export interface NotebookEngine {
  /** The module's exports, with spawnScatterGather wrapped. */
  namespace: Record<string, unknown>;
  closeAll(): Promise<void>;
}

/** Methods that block until results arrive, and so show progress. */
const WAITING_METHODS = ['waitForResult', 'map', 'mapResults'];
const PROGRESS_INTERVAL_MS = 200;

export function forNotebook(
  engine: Record<string, unknown>,
  io: { display: Display; write: (name: StreamName, text: string) => void },
): NotebookEngine {
  const open = new Set<ScatterGatherLike>();
  const spawn = engine.spawnScatterGather as ((...args: unknown[]) => ScatterGatherLike | Promise<ScatterGatherLike>) | undefined;

  const adopt = (sg: ScatterGatherLike): ScatterGatherLike => {
    open.add(sg);
    forwardJobOutput(sg, io.write);
    showProgressWhileWaiting(sg, io.display);
    addViews(sg);
    const close = sg.close.bind(sg);
    sg.close = () => {
      open.delete(sg);
      return close();
    };
    return sg;
  };

  const namespace: Record<string, unknown> = { ...engine };
  if (spawn) {
    namespace.spawnScatterGather = (urls?: unknown, options?: unknown, ...rest: unknown[]) => {
      // The terminal progress bar is for scripts; cells get the live display instead.
      const quiet = options === undefined || (typeof options === 'object' && options !== null) ? { progress: false, ...(options as object | undefined) } : options;
      const spawned = spawn(urls, quiet, ...rest);
      return spawned instanceof Promise ? spawned.then(adopt) : adopt(spawned);
    };
  }
  return {
    namespace,
    async closeAll() {
      await Promise.allSettled([...open].map(async (sg) => sg.close()));
    },
  };
}

/** status() resolves to the same data, rendered as a table when it is a cell's value; plotDurations charts a finished batch. */
function addViews(sg: ScatterGatherLike): void {
  const status = sg.status;
  if (typeof status === 'function') sg.status = async (...args: unknown[]) => statusView((await status.apply(sg, args)) as StatusLike);
  sg.plotDurations = (results: readonly TimedResult[]) => durationsChart(results);
}

function forwardJobOutput(sg: ScatterGatherLike, write: (name: StreamName, text: string) => void): void {
  const midLine = new Map<string, boolean>();
  sg.on('output', ((output: JobOutput) => {
    const tag = `[worker ${output.worker}${output.host ? `@${output.host}` : ''}] `;
    const key = `${output.server ?? output.host ?? ''}/${output.worker}/${output.stream}`;
    const tagged = (midLine.get(key) ? '' : tag) + output.text.replace(/\n(?=[^]*[^\n])/g, `\n${tag}`);
    midLine.set(key, !output.text.endsWith('\n'));
    write(output.stream === 'stderr' ? 'stderr' : 'stdout', tagged);
  }) as Listener);
}

function showProgressWhileWaiting(sg: ScatterGatherLike, display: Display): void {
  let depth = 0; // one waiting method may call another: only the outermost shows progress
  const current = () => sg.progress as Progress | undefined;
  for (const method of WAITING_METHODS) {
    const original = sg[method];
    if (typeof original !== 'function') continue;
    sg[method] = async (...args: unknown[]) => {
      if (depth > 0) return original.apply(sg, args);
      depth++;
      const bar = new ProgressBar(display, current());
      const onProgress = ((progress: Progress) => bar.set(progress)) as Listener;
      sg.on('progress', onProgress);
      try {
        return await original.apply(sg, args);
      } finally {
        depth--;
        (sg.off ?? sg.removeListener)?.call(sg, 'progress', onProgress);
        bar.finish(current());
      }
    };
  }
}

/** One display, updated at most every PROGRESS_INTERVAL_MS and once more at the end. */
class ProgressBar {
  private readonly handle: DisplayHandle<IMimeBundle>;
  private latest?: Progress;
  private shownAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(display: Display, initial?: Progress) {
    this.latest = initial;
    this.handle = display.mime(render(initial));
  }

  set(progress: Progress): void {
    this.latest = progress;
    const wait = this.shownAt + PROGRESS_INTERVAL_MS - Date.now();
    if (wait <= 0) this.show();
    else this.timer ??= setTimeout(() => this.show(), wait).unref();
  }

  finish(final?: Progress): void {
    this.latest = final ?? this.latest;
    this.show();
  }

  private show(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.shownAt = Date.now();
    this.handle.update(render(this.latest));
  }
}

function render(progress: Progress | undefined): IMimeBundle {
  if (!progress) return { 'text/plain': 'waiting for results…', 'text/html': '<div>waiting for results…</div>' };
  const { done, failed, total, outstanding, rate } = progress;
  const fraction = total > 0 ? Math.min(1, (done + failed) / total) : 0;
  const filled = Math.round(fraction * 30);
  const summary = `${done}/${total} done, ${failed} failed, ${outstanding} outstanding, ${rate.toFixed(1)} jobs/s`;
  return {
    'text/plain': `[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${summary}`,
    'text/html': `<div><progress value="${done + failed}" max="${Math.max(total, 1)}" style="width: 20em"></progress> ${summary}</div>`,
  };
}
