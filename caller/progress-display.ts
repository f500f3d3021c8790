/**
 * Progress shown while the caller waits for results: through the spawn option `reporter` (the
 * kernel's live display), else, for waits on many results, a bar when stdout is a terminal. One at
 * a time: a wait inside another reports through the outer one.
 */
import { terminalProgress } from './terminal-progress.js';
import type { Progress, ProgressView, SpawnOptions } from './types.js';

interface ProgressSource {
  readonly progress: Progress;
  on(event: 'progress', listener: (progress: Progress) => void): unknown;
  off(event: 'progress', listener: (progress: Progress) => void): unknown;
}

export class ProgressDisplay {
  private showing = false;

  constructor(
    private readonly source: ProgressSource,
    private readonly options: Pick<SpawnOptions, 'reporter' | 'progress'>,
  ) {}

  /** `waiting`, with progress shown until it settles; `many`: a wait for many results (map, or all of them). */
  async around<T>(waiting: Promise<T>, many: boolean): Promise<T> {
    if (this.showing) return waiting;
    const reporter = this.options.reporter?.progress;
    let view: ProgressView | undefined;
    if (reporter) view = reporter(this.source.progress);
    else if (many && this.options.progress !== false && process.stdout.isTTY) view = terminalProgress(process.stdout, this.source.progress);
    if (!view) return waiting;
    this.showing = true;
    const update = (progress: Progress) => view.update(progress);
    this.source.on('progress', update);
    try {
      return await waiting;
    } finally {
      this.source.off('progress', update);
      this.showing = false;
      view.done(this.source.progress);
    }
  }
}
