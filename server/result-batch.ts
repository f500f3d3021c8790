/**
 * The worker's result hold: results wait, in one batch per controller, and go in few messages
 * rather than one each (docs/architecture.md, "Worker → controller: the result hold"). Every
 * message costs each process it passes a wake-up of ZeroMQ's I/O thread.
 */
import type { EncodedValue } from '../protocol/codec.js';
import { RESULT_HOLD_MAX, RESULT_HOLD_MS } from '../protocol/flow-control.js';
import type { OutputRow } from '../protocol/messages.js';
import { RowKind, WorkerRowWriter } from '../protocol/rows.js';

/** Results held are sent once there are this many... */
export const FLUSH_MAX_RESULTS = RESULT_HOLD_MAX;
/** ...or once they hold this much text, so the values frame stays far below the links' frame limit. */
export const FLUSH_MAX_TEXT = 64 * 1024 * 1024;

/** Results for one controller, not yet sent. */
export class ResultBatch {
  readonly rows = new WorkerRowWriter();
  values: string[] = [];
  bins: Uint8Array[] = [];
  out: OutputRow[] = [];

  get size(): number {
    return this.rows.count;
  }
}

/** Sends one controller's batch; called by flush() for each batch with anything in it. */
export type SendBatch = (controller: string, batch: ResultBatch) => void;

export class ResultHold {
  private readonly batches = new Map<string, ResultBatch>();
  /** Results recorded and not yet flushed, over all controllers. */
  private heldResults = 0;
  /** Characters of result text held, over all controllers. */
  private heldText = 0;
  private lastFlush: number;

  /** `now` is the clock due() is given times of (performance.now() in a worker). */
  constructor(
    private readonly send: SendBatch,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastFlush = now();
  }

  /** Results held, over all controllers. */
  get results(): number {
    return this.heldResults;
  }

  /** Records a job's result: its row, value text and binary frames. */
  add(controller: string, job: number, ok: boolean, encoded: EncodedValue, startedAt: number, runMs: number, version: number, kind: RowKind = RowKind.result): void {
    // A large result goes in a message of its own rather than past the frame limit with the others.
    if (this.heldText > 0 && this.heldText + encoded.text.length > FLUSH_MAX_TEXT) this.flush();
    const batch = this.batchFor(controller);
    batch.rows.add(job, ok, batch.bins.length, encoded.bins.length, startedAt, runMs, version, encoded.plain, kind);
    this.heldResults++;
    this.heldText += encoded.text.length;
    batch.values.push(encoded.text);
    for (const bin of encoded.bins) batch.bins.push(bin);
  }

  /** A fold's partial for job `job` and a covered row for each of `covered`, in one message whatever their size (they stand or fall together). */
  addGroup(controller: string, job: number, partial: EncodedValue, covered: readonly number[], startedAt: number, version: number): void {
    this.add(controller, job, true, partial, startedAt, 0, version, RowKind.partial);
    const batch = this.batchFor(controller);
    for (const other of covered) {
      batch.rows.add(other, true, batch.bins.length, 0, startedAt, 0, version, true, RowKind.covered);
      batch.values.push('null');
    }
    this.heldResults += covered.length;
    this.heldText += 4 * covered.length;
  }

  /** Console output a job wrote, sent with the next flush. */
  addOutput(controller: string, job: number, taken: ReadonlyArray<readonly [OutputRow[1], string]>): void {
    const batch = this.batchFor(controller);
    for (const [stream, text] of taken) batch.out.push([job, stream, text]);
  }

  /**
   * Whether to flush after a job that ended at `jobEnd`: when the queue has run dry, at least every
   * RESULT_HOLD_MS while it has not, or once the results held are many or large.
   */
  due(jobEnd: number, queueEmpty: boolean): boolean {
    return queueEmpty || jobEnd - this.lastFlush >= RESULT_HOLD_MS || this.heldResults >= FLUSH_MAX_RESULTS || this.heldText >= FLUSH_MAX_TEXT;
  }

  /** Sends every batch with a result or output in it, and starts afresh. */
  flush(): void {
    for (const [controller, batch] of this.batches) {
      if (batch.size === 0 && batch.out.length === 0) continue;
      this.send(controller, batch);
    }
    this.batches.clear();
    this.heldResults = 0;
    this.heldText = 0;
    this.lastFlush = this.now();
  }

  /** Forgets what is held for a controller whose session ended. */
  drop(controller: string): void {
    const batch = this.batches.get(controller);
    if (!batch) return;
    this.batches.delete(controller);
    this.heldResults -= batch.size;
    for (const text of batch.values) this.heldText -= text.length;
  }

  private batchFor(controller: string): ResultBatch {
    let batch = this.batches.get(controller);
    if (!batch) this.batches.set(controller, (batch = new ResultBatch()));
    return batch;
  }
}
