/** results(): the results of jobs added with addJob in completion order, with the iteration's progress shown while it waits. */
import type { JobLedger } from './job-ledger.js';
import type { IterationProgress } from './progress-display.js';
import type { JobResult } from './types.js';
import type { Waiters } from './waiters.js';

export interface ResultsSource {
  ledger: JobLedger;
  waiters: Waiters;
  /** Takes the results there (as poll() does). */
  take(): JobResult[];
  /** The consumer came back for another result (or stopped): what it was given is taken; `pending` more of the batch wait (what it did not reach is back in the ledger once it stopped). */
  settled?(pending: number): void;
  /** Nothing added with addJob is outstanding, or still to be queued. */
  drained(): boolean;
  progress(): IterationProgress;
  /** Stops a wait for results once aborted (the iteration then throws its reason). */
  signal?: AbortSignal;
}

/** What results() returns: the results as they come, and a fold over them. */
export interface ResultStream extends AsyncGenerator<JobResult> {
  /**
   * Folds each result (failures included, in completion order) into `initial` as it arrives,
   * keeping none, until nothing added with addJob is outstanding.
   */
  reduce<A>(reducer: (accumulator: A, result: JobResult, index: number) => A, initial: A): Promise<A>;
}

export function resultStream(source: ResultsSource): ResultStream {
  const stream = iterateResults(source) as ResultStream;
  stream.reduce = async (reducer, initial) => {
    let accumulator = initial;
    let index = 0;
    for await (const result of stream) accumulator = reducer(accumulator, result, index++);
    return accumulator;
  };
  return stream;
}

async function* iterateResults(source: ResultsSource): AsyncGenerator<JobResult> {
  const { ledger } = source;
  const progress = source.progress();
  try {
    for (;;) {
      if (ledger.arrived.length > 0) {
        // Taken a batch at a time (shift() one by one is quadratic on a large backlog); what a
        // consumer that stops early has not seen goes back for poll().
        const batch = source.take();
        let next = 0;
        try {
          while (next < batch.length) {
            yield batch[next++]!;
            source.settled?.(batch.length - next);
          }
        } finally {
          if (next < batch.length) ledger.arrived = batch.slice(next).concat(ledger.arrived);
          source.settled?.(0);
        }
        continue;
      }
      if (source.drained()) return;
      await progress.wait(source.waiters.until(() => ledger.arrived.length > 0 || source.drained(), undefined, source.signal));
    }
  } finally {
    progress.end();
  }
}
