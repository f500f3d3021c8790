/** A cli-progress bar for scripts in a terminal, fed by the caller's 'progress' events. */
import { EventEmitter } from 'node:events';
import cliProgress from 'cli-progress';
import type { Progress } from './types.js';

interface ProgressSource extends EventEmitter {
  readonly progress: Progress;
}

/** Draws until the returned function is called, which leaves the final state on screen. */
export function drawProgress(source: ProgressSource, stream: NodeJS.WriteStream): () => void {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: 'jobs {bar} {percentage}% | {value}/{total} | {failed} failed | {rate} jobs/s | eta {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = (p: Progress) => ({ failed: p.failed, rate: p.rate.toFixed(1) });
  const start = source.progress;
  bar.start(start.total, start.done + start.failed, payload(start));
  const update = (p: Progress) => {
    bar.setTotal(p.total);
    bar.update(p.done + p.failed, payload(p));
  };
  source.on('progress', update);
  return () => {
    source.off('progress', update);
    update(source.progress);
    bar.stop();
  };
}
