/** A cli-progress bar for scripts in a terminal: the default way a wait for results shows progress. */
import cliProgress from 'cli-progress';
import type { Progress, ProgressView, WaitingCall } from './types.js';

/** Draws `call`'s bar on `stream` from `initial` on; done() leaves the final state on screen. */
export function terminalProgress(stream: NodeJS.WriteStream, initial: Progress, call: WaitingCall): ProgressView {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{label} {bar} {percentage}% | {value}/{total} | {failed} failed | {rate} jobs/s | eta {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = (p: Progress) => ({ label: call.label, failed: p.failed, rate: p.rate.toFixed(1) });
  bar.start(initial.total, initial.done + initial.failed, payload(initial));
  const update = (p: Progress) => {
    bar.setTotal(p.total);
    bar.update(p.done + p.failed, payload(p));
  };
  return {
    update,
    done(final) {
      update(final);
      bar.stop();
    },
  };
}
