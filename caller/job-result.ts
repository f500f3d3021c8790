/**
 * The JobResult the caller builds for each result that arrives. Its timings are five numbers, and
 * as fields of an object of their own each would be a boxed double: 100,000 held results carried
 * 600,000 small heap objects that every garbage collection copied, for figures few programs read.
 * They stay in one Float64Array per results message instead, and `timings` builds the object when
 * it is read. JSON.stringify and console.log show a result as the plain object it stands for.
 */
import { inspect } from 'node:util';
import type { JobResult } from './types.js';

const COLUMNS = 4; // queuedAt, dispatchedAt, startedAt, runMs; finishedAt is the message's

/** The timings of one results message: finishedAt, then four columns per result. */
export class MessageTimings {
  readonly times: Float64Array;
  private next = 1;

  constructor(results: number, finishedAt: number) {
    this.times = new Float64Array(1 + COLUMNS * results);
    this.times[0] = finishedAt;
  }

  /** Records one result's timings; returns where they are. */
  add(queuedAt: number, dispatchedAt: number, startedAt: number, runMs: number): number {
    const at = this.next;
    const times = this.times;
    times[at] = queuedAt;
    times[at + 1] = dispatchedAt;
    times[at + 2] = startedAt;
    times[at + 3] = runMs;
    this.next += COLUMNS;
    return at;
  }
}

export class ArrivedResult<T = unknown> implements JobResult<T> {
  /** Set after construction only when the job printed something. */
  output: string | undefined = undefined;
  readonly #times: Float64Array;
  readonly #at: number;

  constructor(
    public id: number,
    public ok: boolean,
    public value: T | undefined,
    public error: Error | undefined,
    public fn: string,
    public version: number,
    public attempts: number,
    public worker: JobResult['worker'],
    timings: MessageTimings,
    at: number,
  ) {
    this.#times = timings.times;
    this.#at = at;
  }

  get timings(): JobResult['timings'] {
    const times = this.#times;
    const at = this.#at;
    const finishedAt = times[0]!;
    const queuedAt = times[at]!;
    return { queuedAt, dispatchedAt: times[at + 1]!, startedAt: times[at + 2]!, finishedAt, runMs: times[at + 3]!, totalMs: finishedAt - queuedAt };
  }

  /** The plain object: `value` or `error` as `ok` says, `output` when there is some, and the timings. */
  toJSON(): JobResult<T> {
    const { id, ok, fn, version, attempts, worker, timings } = this;
    const plain: JobResult<T> = ok ? { id, ok, value: this.value, fn, version, attempts, worker, timings } : { id, ok, error: this.error, fn, version, attempts, worker, timings };
    if (this.output !== undefined) plain.output = this.output;
    return plain;
  }

  [inspect.custom](): JobResult<T> {
    return this.toJSON();
  }
}
