/**
 * What becomes of the jobs a worker held when it went: put back, charged an attempt, or failed with
 * the error that says why. Decisions over the queues and the jobs' records only: no sockets or
 * timers; failures go through JobFailures to whoever answers the caller.
 */
import type { DownCause } from '../protocol/index.js';
import { takeFromInflight, type WorkerSlot } from './cluster.js';
import { charge, openParts, runOf, type Chunk, type ChunkIndex } from './job-chunks.js';
import type { Scheduler } from './scheduling.js';

export interface RecoveryOptions {
  /** Times a job is retried after a worker died while running it alone. */
  retries: number;
  /** Times a job is retried after running past its timeout (0: reported as JobTimeoutError). */
  timeoutRetries: number;
}

/** Fails one job for good, on behalf of the worker it was lost on. */
export interface JobFailures {
  fail(chunk: Chunk, index: number, dispatchedAt: number, slot: WorkerSlot, name: string, message: string): void;
}

export interface RecoveryCounters {
  retried: number;
  timedOut: number;
}

export class Recovery {
  constructor(
    private readonly options: RecoveryOptions,
    private readonly chunks: ChunkIndex,
    private readonly scheduler: Scheduler,
    private readonly failures: JobFailures,
    private readonly counters: RecoveryCounters,
  ) {}

  /** A job ran past its timeout and its server killed the worker: report it (or retry, as configured); the rest aboard are innocent. */
  timedOut(slot: WorkerSlot, id: number | undefined, limitMs: number | undefined, description: string): void {
    if (id === undefined) return;
    const chunk = this.chunks.find(id);
    if (!chunk) return;
    const index = id - chunk.first;
    const run = chunk.done[index] ? undefined : takeFromInflight(slot, chunk, index);
    if (!run) return;
    const attempts = charge(chunk, index);
    this.counters.timedOut++;
    if (attempts > this.options.timeoutRetries) {
      return this.failures.fail(
        chunk,
        index,
        run.dispatchedAt,
        slot,
        'JobTimeoutError',
        `job ${id} ('${chunk.fn}') ran past its timeout of ${limitMs ?? chunk.timeoutMs} ms; ${description} and reforked (attempt ${attempts})`,
      );
    }
    this.counters.retried++;
    this.scheduler.requeueFront(runOf(chunk, index));
  }

  /**
   * Puts a gone worker's jobs back. When the worker was asked to go (refresh, die, shutdown) they
   * are innocent. When it died on its own with one job aboard, that job is charged an attempt;
   * with several aboard, nobody is charged yet: they are rerun one by one until the killer is alone.
   */
  workerLost(slot: WorkerSlot, cause: DownCause, description: string): void {
    this.scheduler.release(slot);
    // Jobs folded into its accumulator ran well: their contributions died with it, so they run again, uncharged.
    const folded = slot.folded.flatMap((run) => [...openParts(run)]);
    slot.folded = [];
    for (let i = folded.length - 1; i >= 0; i--) {
      this.scheduler.requeueFront(folded[i]!);
      this.counters.retried += folded[i]!.end - folded[i]!.start;
    }
    const aboard = slot.inflight.flatMap((run) => [...openParts(run)]);
    slot.inflight = [];
    slot.inflightCount = 0;
    if (cause !== 'crash') {
      // Asked to go, recycled over its memory ceiling, or killed for another job's timeout: nobody aboard is charged.
      for (let i = aboard.length - 1; i >= 0; i--) this.scheduler.requeueFront(aboard[i]!);
      return;
    }
    const alone = aboard.length === 1 && aboard[0]!.end - aboard[0]!.start === 1 ? aboard[0]! : undefined;
    if (alone) {
      const { chunk, start: index } = alone;
      const attempts = charge(chunk, index);
      if (attempts > this.options.retries) {
        return this.failures.fail(
          chunk,
          index,
          alone.dispatchedAt,
          slot,
          'WorkerDiedError',
          `${description} while running job ${chunk.first + index} ('${chunk.fn}'); gave up after ${attempts} attempt(s)`,
        );
      }
      this.counters.retried++;
      this.scheduler.suspect(alone);
      return;
    }
    for (const run of aboard) for (let index = run.start; index < run.end; index++) this.scheduler.suspect(runOf(run.chunk, index));
  }
}

/** How a worker-down says the worker went, for the error its lost job reports. */
export function downText(head: { cause: DownCause; code: number | null; signal: string | null; rssMb?: number }): string {
  if (head.cause === 'timeout') return 'was killed';
  if (head.cause === 'recycle') return `was recycled at ${head.rssMb} MB resident`;
  if (head.signal) return `was killed by ${head.signal}`;
  return `exited with code ${head.code}`;
}
