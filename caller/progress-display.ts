/**
 * Progress shown while a call waits for results, counting that call's jobs (call-progress.ts) and
 * ended, with its final counts, when the call returns or throws: through the spawn option
 * `reporter` (the kernel's live display), else, for map, mapResults and waitForResult({ all }), a
 * bar when stdout is a terminal (one at a time: a terminal has one line to draw on).
 */
import { callLabel, claimCounter, unclaimedCounter, type CallCounter } from './call-progress.js';
import type { JobLedger } from './job-ledger.js';
import type { Claim } from './pending.js';
import { terminalProgress } from './terminal-progress.js';
import type { Progress, ProgressView, SpawnOptions, WaitingCall } from './types.js';

interface ProgressSource {
  on(event: 'progress', listener: (progress: Progress) => void): unknown;
  off(event: 'progress', listener: (progress: Progress) => void): unknown;
}

/** A shown view: end() shows the final counts and stops the updates (once). */
interface Shown {
  end(error?: Error): void;
}

/** A results() iteration: its view opens at its first wait and ends with the iteration. */
export interface IterationProgress {
  wait<T>(waiting: Promise<T>): Promise<T>;
  end(): void;
}

/** The calls that claim their jobs' results. */
export type ClaimingCall = 'map' | 'mapResults' | 'submit' | 'mapReduce';

/** One-result calls: while another view is open, they show none (a Promise.all of many submits shows one bar, not thousands). */
const oneResult = (call: WaitingCall) => call.method === 'submit' || (call.method === 'waitForResult' && !call.all);

/** On a terminal: the calls over many jobs, and not a results() loop, whose body prints between results (a bar redrawn on the same terminal would garble them). */
const onTerminal = (call: WaitingCall) => !oneResult(call) && call.method !== 'results';

export class ProgressDisplay {
  /** Views open now. */
  private open = 0;
  private terminalInUse = false;

  constructor(
    private readonly source: ProgressSource,
    private readonly ledger: JobLedger,
    private readonly options: Pick<SpawnOptions, 'reporter' | 'progress'>,
  ) {}

  /** map, mapResults, submit: `settled` shown as a bar of the claim's jobs. */
  claimed<T>(method: ClaimingCall, fn: string, claim: Claim, settled: Promise<T>): Promise<T> {
    return this.around(callLabel(method, fn), claimCounter(claim), settled);
  }

  /** waitForResult: `waiting` shown as a bar of the addJob results it returns. */
  waitForResult<T>(all: boolean, waiting: Promise<T>): Promise<T> {
    return this.around(callLabel('waitForResult', undefined, all), unclaimedCounter(this.ledger, !all), waiting);
  }

  /** results(): counted from now, shown from its first wait on. */
  iteration(): IterationProgress {
    const counter = unclaimedCounter(this.ledger, false);
    let shown: Shown | undefined;
    let opened = false;
    let failure: Error | undefined;
    return {
      wait: async (waiting) => {
        if (!opened) {
          opened = true;
          shown = this.show(callLabel('results'), counter);
        }
        try {
          return await waiting;
        } catch (error) {
          failure = error as Error;
          throw error;
        }
      },
      end: () => shown?.end(failure),
    };
  }

  private async around<T>(call: WaitingCall, counter: CallCounter, waiting: Promise<T>): Promise<T> {
    const shown = this.show(call, counter);
    if (!shown) return waiting;
    try {
      const value = await waiting;
      shown.end();
      return value;
    } catch (error) {
      shown.end(error as Error);
      throw error;
    }
  }

  private show(call: WaitingCall, counter: CallCounter): Shown | undefined {
    const reporter = this.options.reporter;
    let view: ProgressView | undefined;
    let terminal = false;
    if (reporter?.progress) {
      if (oneResult(call) && this.open > 0) return undefined;
      view = reporter.progress(counter(), call);
    } else if (onTerminal(call) && !this.terminalInUse && this.options.progress !== false && process.stdout.isTTY) {
      view = terminalProgress(process.stdout, counter(), call);
      terminal = this.terminalInUse = true;
    }
    if (!view) return undefined;
    this.open++;
    const update = () => view.update(counter());
    this.source.on('progress', update);
    let ended = false;
    return {
      end: (error) => {
        if (ended) return;
        ended = true;
        this.source.off('progress', update);
        this.open--;
        if (terminal) this.terminalInUse = false;
        view.done(counter(), error);
      },
    };
  }
}
