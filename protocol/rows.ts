/**
 * The result rows of a results message, worker → server → controller → caller: a binary frame of
 * float64 numbers, a fixed number per result, so that no hop parses or writes JSON per job. The
 * worker writes a WorkerRow per result; the controller forwards each as a CallerRow (the worker's
 * columns behind the index of the result's value, then what only the controller knows). Each
 * layout has one writer and one reader here: nothing else reads or writes a row by position.
 */
import { ProtocolError } from './messages.js';

/** A worker's result row: its columns, by name. */
export const WorkerRow = {
  job: 0,
  /** 1 when the job returned, 0 when it threw. */
  ok: 1,
  /** The result's first binary frame, and how many it has. */
  binStart: 2,
  binCount: 3,
  /** When the job started (epoch ms) and how long it ran (ms). */
  startedAt: 4,
  runMs: 5,
  /** The definition's version (0: preloaded with --module). */
  version: 6,
  /** 1 when the value is plain JSON, 0 for a superjson tree (see EncodedValue). */
  plain: 7,
  /** What the row says of its job: a RowKind. */
  kind: 8,
  width: 9,
} as const;

/**
 * What a row says of its job. Jobs of a mapReduce with `onServers` are folded on their worker:
 * each is acknowledged with a `folded` row (no value; the controller keeps it as the worker's, and
 * the caller never sees it), and later completed by a `partial` row, whose value is the worker's
 * accumulator, followed in the same message by a `covered` row (no value) for every other job
 * that accumulator folded in. A partial and its covered rows stand or fall together.
 */
export const RowKind = {
  /** A job's own value (or failure). */
  result: 0,
  folded: 1,
  partial: 2,
  covered: 3,
} as const;
export type RowKind = (typeof RowKind)[keyof typeof RowKind];

/** Whether `kind` (as a row holds it: any number) is one of RowKind's values. */
export function isRowKind(kind: number): kind is RowKind {
  return kind === RowKind.result || kind === RowKind.folded || kind === RowKind.partial || kind === RowKind.covered;
}

/** The row the caller gets: where the value stands in the values frame, the worker's row, then the controller's columns. */
export const CallerRow = {
  valueIndex: 0,
  /** The worker's columns start here, in WorkerRow order. */
  worker: 1,
  job: 1 + WorkerRow.job,
  ok: 1 + WorkerRow.ok,
  binStart: 1 + WorkerRow.binStart,
  binCount: 1 + WorkerRow.binCount,
  startedAt: 1 + WorkerRow.startedAt,
  runMs: 1 + WorkerRow.runMs,
  version: 1 + WorkerRow.version,
  plain: 1 + WorkerRow.plain,
  kind: 1 + WorkerRow.kind,
  /** How many times the job was sent to a worker, this run included. */
  attempts: 1 + WorkerRow.width,
  /** When the controller sent it to its worker (epoch ms). */
  dispatchedAt: 2 + WorkerRow.width,
  width: 3 + WorkerRow.width,
} as const;

/** The numbers of a rows frame; a view on the frame when it is aligned (it is, as ZeroMQ hands it over). */
export function readRows(frame: Buffer | undefined, columns: number, what: string): Float64Array {
  if (!frame || frame.byteLength % (8 * columns) !== 0) throw new ProtocolError(`${what} frame must hold ${columns} float64 numbers per row`);
  if (frame.byteOffset % 8 === 0) return new Float64Array(frame.buffer, frame.byteOffset, frame.byteLength / 8);
  return new Float64Array(new Uint8Array(frame).buffer);
}

/** Rows written one at a time into a typed array that doubles as it fills; sent as a view. */
abstract class RowWriter {
  protected rows: Float64Array;
  protected filled = 0;

  constructor(
    protected readonly width: number,
    capacity: number,
  ) {
    this.rows = new Float64Array(width * Math.max(1, capacity));
  }

  get count(): number {
    return this.filled / this.width;
  }

  /** The rows as bytes: a view, since rows are never written once sent. */
  bytes(): Uint8Array {
    return new Uint8Array(this.rows.buffer, 0, this.filled * Float64Array.BYTES_PER_ELEMENT);
  }

  /** Where the next row starts, after making room for it. */
  protected next(): number {
    if (this.filled === this.rows.length) {
      const grown = new Float64Array(this.rows.length * 2);
      grown.set(this.rows);
      this.rows = grown;
    }
    const at = this.filled;
    this.filled += this.width;
    return at;
  }
}

/** A worker's rows. It starts with room for one: V8 keeps a typed array of up to 64 bytes in its heap, far cheaper to make. */
export class WorkerRowWriter extends RowWriter {
  constructor(capacity = 1) {
    super(WorkerRow.width, capacity);
  }

  add(job: number, ok: boolean, binStart: number, binCount: number, startedAt: number, runMs: number, version: number, plain: boolean, kind: RowKind = RowKind.result): void {
    const at = this.next();
    const rows = this.rows;
    rows[at + WorkerRow.job] = job;
    rows[at + WorkerRow.ok] = ok ? 1 : 0;
    rows[at + WorkerRow.binStart] = binStart;
    rows[at + WorkerRow.binCount] = binCount;
    rows[at + WorkerRow.startedAt] = startedAt;
    rows[at + WorkerRow.runMs] = runMs;
    rows[at + WorkerRow.version] = version;
    rows[at + WorkerRow.plain] = plain ? 1 : 0;
    rows[at + WorkerRow.kind] = kind;
  }
}

/** The rows a controller sends its caller. */
export class CallerRowWriter extends RowWriter {
  constructor(capacity: number) {
    super(CallerRow.width, capacity);
  }

  /** Row `row` of a worker's rows, forwarded as is behind `valueIndex`, with the controller's columns. */
  forward(worker: WorkerRows, row: number, valueIndex: number, attempts: number, dispatchedAt: number): void {
    const at = this.next();
    const rows = this.rows;
    rows[at + CallerRow.valueIndex] = valueIndex;
    // Column by column: a subarray to set() from would be an object per result.
    const from = worker.data;
    const start = row * WorkerRow.width;
    for (let column = 0; column < WorkerRow.width; column++) rows[at + CallerRow.worker + column] = from[start + column]!;
    rows[at + CallerRow.attempts] = attempts;
    rows[at + CallerRow.dispatchedAt] = dispatchedAt;
  }

  /** A result the controller makes itself (a job it failed): no binary frames, no run. */
  failed(valueIndex: number, job: number, startedAt: number, version: number, plain: boolean, attempts: number, dispatchedAt: number): void {
    const at = this.next();
    const rows = this.rows;
    rows.fill(0, at, at + CallerRow.width);
    rows[at + CallerRow.valueIndex] = valueIndex;
    rows[at + CallerRow.job] = job;
    rows[at + CallerRow.startedAt] = startedAt;
    rows[at + CallerRow.version] = version;
    rows[at + CallerRow.plain] = plain ? 1 : 0;
    rows[at + CallerRow.attempts] = attempts;
    rows[at + CallerRow.dispatchedAt] = dispatchedAt;
  }
}

/** A worker's rows as the controller reads them. */
export class WorkerRows {
  readonly data: Float64Array;
  readonly count: number;

  constructor(frame: Buffer | undefined) {
    this.data = readRows(frame, WorkerRow.width, 'result rows');
    this.count = this.data.length / WorkerRow.width;
  }

  job(row: number): number {
    return this.data[row * WorkerRow.width + WorkerRow.job]!;
  }

  ok(row: number): boolean {
    return this.data[row * WorkerRow.width + WorkerRow.ok] === 1;
  }

  runMs(row: number): number {
    return this.data[row * WorkerRow.width + WorkerRow.runMs]!;
  }

  kind(row: number): RowKind {
    return this.data[row * WorkerRow.width + WorkerRow.kind]! as RowKind;
  }
}

/** The rows as the caller reads them. */
export class CallerRows {
  readonly data: Float64Array;
  readonly count: number;

  constructor(frame: Buffer | undefined) {
    this.data = readRows(frame, CallerRow.width, 'result rows');
    this.count = this.data.length / CallerRow.width;
  }

  private at(row: number, column: number): number {
    return this.data[row * CallerRow.width + column]!;
  }

  valueIndex(row: number): number {
    return this.at(row, CallerRow.valueIndex);
  }
  job(row: number): number {
    return this.at(row, CallerRow.job);
  }
  ok(row: number): boolean {
    return this.at(row, CallerRow.ok) === 1;
  }
  binStart(row: number): number {
    return this.at(row, CallerRow.binStart);
  }
  binCount(row: number): number {
    return this.at(row, CallerRow.binCount);
  }
  startedAt(row: number): number {
    return this.at(row, CallerRow.startedAt);
  }
  runMs(row: number): number {
    return this.at(row, CallerRow.runMs);
  }
  version(row: number): number {
    return this.at(row, CallerRow.version);
  }
  plain(row: number): boolean {
    return this.at(row, CallerRow.plain) === 1;
  }
  kind(row: number): RowKind {
    return this.at(row, CallerRow.kind) as RowKind;
  }
  attempts(row: number): number {
    return this.at(row, CallerRow.attempts);
  }
  dispatchedAt(row: number): number {
    return this.at(row, CallerRow.dispatchedAt);
  }
}
