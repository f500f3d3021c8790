/**
 * In the cell worker: the `tsgather` engine as notebooks see it. spawnScatterGather is given a
 * reporter, so that waiting shows a live progress display updated in place and `sg.status()`
 * renders as a table; job output shows up in the running cell (tagged by worker),
 * `sg.plotDurations(results)` draws a Vega-Lite chart, and every instance is closed when the
 * kernel shuts down.
 */
import type { IMimeBundle } from '@jupyterlab/nbformat';
import type { Display, DisplayHandle } from './display.js';
import type { StreamName } from './worker-messages.js';
import type { JobOutput, Progress, ProgressView, Reporter, ScatterGather, Status } from '../caller/index.js';
import { durationsChart, statusView, type TimedResult } from './views.js';

export interface NotebookEngine {
  /** The module's exports, with spawnScatterGather wrapped. */
  namespace: Record<string, unknown>;
  closeAll(): Promise<void>;
}

const PROGRESS_INTERVAL_MS = 200;

type Spawn = (urls?: unknown, options?: unknown, ...rest: unknown[]) => Promise<ScatterGather>;

export function forNotebook(engine: Record<string, unknown>, io: { display: Display; write: (name: StreamName, text: string) => void }): NotebookEngine {
  const open = new Set<ScatterGather>();
  const spawn = engine.spawnScatterGather as Spawn | undefined;
  const reporter: Reporter = {
    progress: (initial) => new ProgressBar(io.display, initial),
    status: (status: Status) => statusView(status),
  };

  const adopt = (sg: ScatterGather): ScatterGather => {
    open.add(sg);
    sg.once('exit', () => open.delete(sg));
    forwardJobOutput(sg, io.write);
    Object.defineProperty(sg, 'plotDurations', { value: (results: readonly TimedResult[]) => durationsChart(results), configurable: true });
    return sg;
  };

  const namespace: Record<string, unknown> = { ...engine };
  if (spawn) {
    namespace.spawnScatterGather = async (urls?: unknown, options?: unknown, ...rest: unknown[]) => {
      // The terminal progress bar is for scripts; cells get the live display instead.
      const inCell = options === undefined || (typeof options === 'object' && options !== null) ? { progress: false, reporter, ...(options as object | undefined) } : options;
      return adopt(await spawn(urls, inCell, ...rest));
    };
  }
  return {
    namespace,
    async closeAll() {
      await Promise.allSettled([...open].map(async (sg) => sg.close()));
    },
  };
}

function forwardJobOutput(sg: ScatterGather, write: (name: StreamName, text: string) => void): void {
  const midLine = new Map<string, boolean>();
  sg.on('output', (output: JobOutput) => {
    const tag = `[worker ${output.worker}${output.host ? `@${output.host}` : ''}] `;
    const key = `${output.server ?? output.host ?? ''}/${output.worker}/${output.stream}`;
    const tagged = (midLine.get(key) ? '' : tag) + output.text.replace(/\n(?=[\s\S]*[^\n])/g, `\n${tag}`);
    midLine.set(key, !output.text.endsWith('\n'));
    write(output.stream === 'stderr' ? 'stderr' : 'stdout', tagged);
  });
}

/** One display, updated at most every PROGRESS_INTERVAL_MS and once more at the end. */
class ProgressBar implements ProgressView {
  private readonly handle: DisplayHandle<IMimeBundle>;
  private latest?: Progress;
  private shownAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(display: Display, initial?: Progress) {
    this.latest = initial;
    this.handle = display.mime(render(initial));
  }

  update(progress: Progress): void {
    this.latest = progress;
    const wait = this.shownAt + PROGRESS_INTERVAL_MS - Date.now();
    if (wait <= 0) this.show();
    else this.timer ??= setTimeout(() => this.show(), wait).unref();
  }

  done(final?: Progress): void {
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
