/**
 * sg.stream: one job whose function yields parts (an async generator), read here as they come.
 * The worker sends at most STREAM_WINDOW parts ahead of what this reader has taken; taking them
 * sends the controller credit for more. The job's result (how many parts) ends the stream.
 */
import { decodeParsed, readJson, STREAM_WINDOW, type ControllerToCaller } from '../protocol/index.js';
import { encodeItems, jobArguments } from './job-encoding.js';
import type { ClaimingPool } from './claims.js';
import { runSpecOf } from './job-options.js';
import type { Claim } from './pending.js';
import type { JobItem, JobOptions } from './types.js';

/** A taken part as credit: after this many, the worker hears it may send more. */
const CREDIT_EVERY = STREAM_WINDOW / 2;

class JobStream {
  readonly parts: unknown[] = [];
  /** Parts arrived (the next one's number); a rerun's parts below it are repeats. */
  received = 0;
  taken = 0;
  ended = false;
  error: Error | undefined;
  wake: (() => void) | undefined;

  constructor(readonly credit: (n: number) => void) {}

  arrived(n: number, value: unknown): void {
    if (n < this.received) return this.credit(n + 1); // a rerun repeats what came: let it get past it
    this.parts.push(value);
    this.received = n + 1;
    this.wake?.();
  }

  end(error?: Error): void {
    this.ended = true;
    this.error = error;
    this.wake?.();
  }
}

export class Streams {
  private readonly byJob = new Map<number, JobStream>();

  constructor(
    private readonly pool: ClaimingPool,
    private readonly sendCredit: (job: number, n: number) => void,
  ) {}

  /** A part from the controller: [head, text, ...binary frames]. */
  part(head: Extract<ControllerToCaller, { t: 'part' }>, message: Buffer[]): void {
    const stream = this.byJob.get(head.job);
    if (!stream) return; // its reader stopped early
    stream.arrived(head.n, decodeParsed(readJson(message[1], 'part'), head.plain, message.slice(2)));
  }

  /** Queues the job and reads its parts as they come. */
  async *open<T>(name: string, args: unknown[], kwargs: Record<string, unknown> | undefined, options: JobOptions = {}): AsyncGenerator<T> {
    const { pool } = this;
    pool.assertRunning();
    const items: JobItem[] = [kwargs === undefined ? [args] : [args, kwargs]];
    jobArguments(pool.defaultFunction, name, items);
    let job = 0;
    const stream = new JobStream((n) => this.sendCredit(job, n));
    await pool.feed(name, encodeItems(name, items), { ...runSpecOf(options, pool.options), stream: true }, (segment) => {
      job = segment.first;
      segment.claim = streamClaim(stream);
      pool.ledger.unclaimed -= 1;
      this.byJob.set(job, stream);
    });
    try {
      for (;;) {
        if (stream.parts.length > 0) {
          const part = stream.parts.shift() as T;
          if (++stream.taken % CREDIT_EVERY === 0) this.sendCredit(job, stream.taken);
          yield part;
          continue;
        }
        if (stream.ended) {
          if (stream.error) throw stream.error;
          return;
        }
        await new Promise<void>((resolve) => (stream.wake = resolve));
        stream.wake = undefined;
      }
    } finally {
      this.byJob.delete(job);
      // Stopped early: let the job run to its end rather than wait on credit for ever (its parts are dropped here).
      if (!stream.ended) this.sendCredit(job, 2 ** 31);
    }
  }
}

/** The job's result ends the stream: a failure is thrown by the reader after the parts before it. */
function streamClaim(stream: JobStream): Claim {
  return {
    results: undefined,
    values: new Array<unknown>(1),
    failure: undefined,
    total: 1,
    open: 1,
    failed: 0,
    settle: (claim) => stream.end(claim.failure?.error),
  };
}
