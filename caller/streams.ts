/**
 * sg.stream: one job whose function yields parts (an async generator), read here as they come.
 * Parts arrive in batches (see PartsHead); the worker runs at most the stream window (STREAM_WINDOW
 * parts, STREAM_WINDOW_BYTES bytes) ahead of what this reader has taken, and taking half of either
 * sends the controller credit for more. The job's result (how many parts) ends the stream.
 */
import { decodeParts, describeError, partsBytes, ProtocolError, STREAM_STOPPED, STREAM_WINDOW, STREAM_WINDOW_BYTES, type ControllerToCaller } from '../protocol/index.js';
import { encodeItems, jobArguments } from './job-encoding.js';
import type { ClaimingPool } from './claims.js';
import { runSpecOf } from './job-options.js';
import type { Claim } from './pending.js';
import type { JobItem, JobOptions, JobPart } from './types.js';

/** A batch's parts not yet taken; its bytes count towards credit once its last part is taken. */
interface Arrived {
  values: unknown[];
  at: number;
  bytes: number;
}

class JobStream {
  private readonly batches: Arrived[] = [];
  /** Parts arrived (the next one's number); a rerun's parts below it are repeats. */
  received = 0;
  /** Parts taken (the next one's number), and at the last credit; bytes of batches wholly taken since. */
  private taken = 0;
  private credited = 0;
  private uncreditedBytes = 0;
  ended = false;
  /** Its reader left before the end: the worker was told to end the generator. */
  stopped = false;
  error: Error | undefined;
  wake: (() => void) | undefined;

  constructor(readonly credit: (n: number) => void) {}

  /** Parts `n` to `n + values.length - 1` came, as one batch of `bytes`. */
  arrived(n: number, values: unknown[], bytes: number): void {
    const repeats = Math.min(values.length, this.received - n);
    if (repeats > 0) {
      this.credit(n + repeats); // a rerun repeats what came: let it get past it
      if (repeats === values.length) return;
      values = values.slice(repeats);
    }
    this.batches.push({ values, at: 0, bytes });
    this.received = n + repeats + values.length;
    this.wake?.();
  }

  get waiting(): boolean {
    return this.batches.length > 0;
  }

  /** The next part (there is one: see waiting), crediting the worker when half the window is taken. */
  take(): unknown {
    const batch = this.batches[0]!;
    const part = batch.values[batch.at++];
    this.taken++;
    if (batch.at === batch.values.length) {
      this.batches.shift();
      this.uncreditedBytes += batch.bytes;
    }
    if (this.taken - this.credited >= STREAM_WINDOW / 2 || this.uncreditedBytes >= STREAM_WINDOW_BYTES / 2) {
      this.credited = this.taken;
      this.uncreditedBytes = 0;
      this.credit(this.taken);
    }
    return part;
  }

  /** The stream ends, with `error` if it failed; a stream ended by an error keeps that error. */
  end(error?: Error): void {
    if (this.ended && this.error) return;
    this.ended = true;
    this.error = error;
    this.wake?.();
  }

  /**
   * A batch could not be read: the reader gets the parts before it, then `error`, and the worker is
   * told to stop (a stream with a hole in it must not end as if whole).
   */
  fail(error: Error): void {
    this.stopped = true;
    this.credit(STREAM_STOPPED);
    this.end(error);
  }
}

export class Streams {
  private readonly byJob = new Map<number, JobStream>();

  constructor(
    private readonly pool: ClaimingPool,
    private readonly sendCredit: (job: number, n: number) => void,
    private readonly emitPart: (part: JobPart) => void,
    private readonly listenerFailed: (job: number, n: number, error: unknown) => void,
  ) {}

  /** A batch of parts from the controller (see PartsHead). */
  parts(head: Extract<ControllerToCaller, { t: 'parts' }>, message: Buffer[]): void {
    const stream = this.byJob.get(head.job);
    if (!stream) return this.emitted(head, message);
    if (stream.stopped) {
      // Its reader left. A rerun (its first worker went) starts again from part 0 and has to hear it too.
      if (head.n === 0) this.sendCredit(head.job, STREAM_STOPPED);
      return;
    }
    let values: unknown[];
    try {
      values = decodeParts(head, message);
    } catch (error) {
      return stream.fail(new ProtocolError(`parts ${head.n} to ${head.n + head.count - 1} of streamed job ${head.job} could not be read: ${describeError(error).message}`));
    }
    stream.arrived(head.n, values, partsBytes(message[1]!, message.slice(3)));
  }

  /**
   * Parts of a job added with `{ stream: true }` (no reader here): each a 'part' event, credited as
   * emitted. A listener that throws does not cost the other parts of the batch, nor the credit the
   * job needs to go on: its error is reported as a 'part-listener-error' event.
   */
  private emitted(head: Extract<ControllerToCaller, { t: 'parts' }>, message: Buffer[]): void {
    try {
      const values = decodeParts(head, message);
      for (let i = 0; i < values.length; i++) {
        try {
          this.emitPart({ job: head.job, n: head.n + i, value: values[i] });
        } catch (error) {
          this.reportListenerError(head.job, head.n + i, error);
        }
      }
    } finally {
      this.sendCredit(head.job, head.n + head.count);
    }
  }

  private reportListenerError(job: number, n: number, error: unknown): void {
    try {
      this.listenerFailed(job, n, error);
    } catch {
      // An 'event' listener threw as well: the parts still go on.
    }
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
      segment.claim = streamClaim(
        stream,
        () => job,
        () => this.byJob.delete(job),
      );
      pool.ledger.unclaimed -= 1;
      this.byJob.set(job, stream);
    });
    try {
      for (;;) {
        if (stream.waiting) {
          yield stream.take() as T;
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
      if (!stream.ended) {
        // Stopped early: the worker ends the generator at its next yield (its result then ends this stream's record).
        stream.stopped = true;
        this.sendCredit(job, STREAM_STOPPED);
      } else if (!stream.stopped) this.byJob.delete(job); // else it failed before its result came: the result ends the record
    }
  }
}

/** The job's result ends the stream: a failure is thrown by the reader after the parts before it. */
function streamClaim(stream: JobStream, job: () => number, settled: () => void): Claim {
  return {
    results: undefined,
    values: new Array<unknown>(1),
    failure: undefined,
    total: 1,
    open: 1,
    failed: 0,
    settle: (claim) => {
      stream.end(claim.failure?.error ?? missingParts(job(), stream, claim.values![0]));
      if (stream.stopped) settled();
    },
  };
}

/** A stream that ended whole (its reader still reading) got as many parts as the job's result says it yielded; else the error saying so. */
function missingParts(job: number, stream: JobStream, count: unknown): Error | undefined {
  if (stream.stopped || count === stream.received) return undefined;
  return new Error(`streamed job ${job} ended saying it yielded ${String(count)} parts, but ${stream.received} came: its parts were lost, or a rerun yielded other parts`);
}
