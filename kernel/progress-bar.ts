/**
 * In the cell worker: the live display of one waiting call (the Reporter's progress view). It
 * counts that call's jobs, is updated in place at most every PROGRESS_INTERVAL_MS, and once more
 * when the call returns or throws, to show its final state: a full description of what the call
 * got, no longer a bar that seems to wait.
 */
import type { IMimeBundle } from '@jupyterlab/nbformat';
import type { Progress, ProgressView, WaitingCall } from '../caller/index.js';
import type { Display, DisplayHandle } from './display.js';

const PROGRESS_INTERVAL_MS = 200;
const BAR_WIDTH = 30;

export class ProgressBar implements ProgressView {
  private readonly handle: DisplayHandle<IMimeBundle>;
  private readonly startedAt = Date.now();
  private latest: Progress;
  private shownAt = 0;
  private timer?: NodeJS.Timeout;
  private ended = false;

  constructor(
    display: Display,
    initial: Progress,
    private readonly call: WaitingCall,
  ) {
    this.latest = initial;
    this.handle = display.mime(renderProgress(call, initial));
    this.shownAt = Date.now();
  }

  update(progress: Progress): void {
    if (this.ended) return;
    this.latest = progress;
    const wait = this.shownAt + PROGRESS_INTERVAL_MS - Date.now();
    if (wait <= 0) this.show();
    else this.timer ??= setTimeout(() => this.show(), wait).unref();
  }

  done(final: Progress, error?: Error): void {
    this.ended = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.handle.update(renderProgress(this.call, final, { seconds: (Date.now() - this.startedAt) / 1000, error }));
  }

  private show(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.shownAt = Date.now();
    this.handle.update(renderProgress(this.call, this.latest));
  }
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * `[####......] map(nap): 2/4 done, 0 failed, 2 outstanding, 3.1 jobs/s` while the call waits;
 * `[##########] map(nap): 4/4 done, 0 failed, in 1.2 s` once it returned (`ended`).
 */
export function renderProgress(call: WaitingCall, progress: Progress, ended?: { seconds: number; error?: Error }): IMimeBundle {
  const { done, failed, total, outstanding, rate } = progress;
  const finished = done + failed;
  const filled = Math.round((total > 0 ? Math.min(1, finished / total) : 1) * BAR_WIDTH);
  const counts = `${done}/${total} done, ${failed} failed`;
  const summary = ended
    ? `${call.label}: ${counts}, in ${ended.seconds.toFixed(1)} s${ended.error ? `; threw ${ended.error.name}: ${ended.error.message.split('\n')[0]}` : ''}`
    : `${call.label}: ${counts}, ${outstanding} outstanding, ${rate.toFixed(1)} jobs/s`;
  const state = ended ? (ended.error ? 'threw' : 'ended') : 'waiting';
  return {
    'text/plain': `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${summary}`,
    'text/html': `<div class="tsgather-progress tsgather-progress-${state}"><progress value="${finished}" max="${Math.max(total, 1)}" style="width: 20em"></progress> ${escapeHtml(summary)}</div>`,
  };
}
