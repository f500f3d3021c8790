/**
 * In the cell worker: the `tsgather` engine as notebooks see it. spawnScatterGather is given a
 * reporter, so that each waiting call shows a live display of its jobs (progress-bar.ts) and `sg.status()`
 * renders as a table; job output shows up in the running cell (tagged by worker),
 * `sg.plotDurations(results)` draws a Vega-Lite chart, and every instance is closed when the
 * kernel shuts down (a named session's is detached instead: it outlives the kernel).
 */
import type { CellCapture } from './capture.js';
import type { Display } from './display.js';
import type { StreamName } from './worker-messages.js';
import type { JobOutput, Reporter, ScatterGather, Status } from '../caller/index.js';
import { ProgressBar } from './progress-bar.js';
import { durationsChart, statusView, type TimedResult } from './views.js';

export interface NotebookEngine {
  /** The module's exports, with spawnScatterGather wrapped. */
  namespace: Record<string, unknown>;
  closeAll(): Promise<void>;
}

type Spawn = (urls?: unknown, options?: unknown, ...rest: unknown[]) => Promise<ScatterGather>;

export interface NotebookIO {
  display: Display;
  write: (name: StreamName, text: string) => void;
  /** The notebook's directory: definitions' imports resolve from it, sync() paths are relative to it. */
  base?: string;
  /** Gives each pool a define that captures from the cell scope (capture.ts). */
  capture?: CellCapture;
}

export function forNotebook(engine: Record<string, unknown>, io: NotebookIO): NotebookEngine {
  const open = new Set<ScatterGather>();
  const spawn = engine.spawnScatterGather as Spawn | undefined;
  const reporter: Reporter = {
    progress: (initial, call) => new ProgressBar(io.display, initial, call),
    status: (status: Status) => statusView(status),
  };

  const adopt = (sg: ScatterGather): ScatterGather => {
    if (open.has(sg)) return sg; // a named session this kernel is attached to already
    open.add(sg);
    sg.once('exit', () => open.delete(sg));
    forwardJobOutput(sg, io.write);
    Object.defineProperty(sg, 'plotDurations', { value: (results: readonly TimedResult[]) => durationsChart(results), configurable: true });
    io.capture?.track(sg);
    return sg;
  };

  const namespace: Record<string, unknown> = { ...engine };
  if (spawn) {
    namespace.spawnScatterGather = async (urls?: unknown, options?: unknown, ...rest: unknown[]) => {
      // The terminal progress bar is for scripts; cells get the live display instead.
      const inCell =
        options === undefined || (typeof options === 'object' && options !== null) ? { progress: false, reporter, ...(io.base ? { base: io.base } : {}), ...(options as object | undefined) } : options;
      return adopt(await spawn(urls, inCell, ...rest));
    };
  }
  return {
    namespace,
    async closeAll() {
      // A named session outlives the kernel (a restart, a shutdown): detach from it rather than end it.
      await Promise.allSettled([...open].map(async (sg) => (sg.session ? sg.detach() : sg.close())));
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
