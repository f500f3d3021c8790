/**
 * A simulated worker: what a real worker (server/worker-runtime.ts) does with the messages it gets,
 * with the running of each job replaced by waiting out its run time. It keeps the real worker's
 * rules by using the real worker's parts: jobs queue per session in server/fair-queue.ts (so two
 * controllers share it as they share a real one), results are held and sent by
 * server/result-batch.ts, definitions are kept per controller by server/definitions.ts (so an
 * unknown function fails with the real error), and jobs are read with protocol/job-values.ts.
 *
 * Time is the worker's own: each job starts when the one before ended, as on a real worker, and
 * its result leaves once that time has come. When the process falls behind (it is busy with other
 * simulated workers), a worker that is late by more than CATCH_UP_MS drops the lost time instead
 * of running back to back in the past: the generator's limit then shows as lag, not as speed.
 */
import { describeError, encodeValue, type EncodedValue } from '../../../protocol/codec.js';
import { parseRun, readUint32s } from '../../../protocol/job-values.js';
import { ProtocolError, readJson, type DefinitionSpec, type JobRun } from '../../../protocol/messages.js';
import { Definitions } from '../../../server/definitions.js';
import { FairQueue } from '../../../server/fair-queue.js';
import { ResultHold, type ResultBatch } from '../../../server/result-batch.js';
import { Deque } from '../../../runtime/deque.js';
import type { Ticker } from './ticker.js';

/** Lateness the worker makes up by running the next job at once; beyond it, the lost time is dropped (and counted). */
export const CATCH_UP_MS = 5;

const NULL_RESULT = encodeValue(null);

interface SimJob {
  controller: string;
  id: number;
  fn: string;
  /** Its simulated run time. */
  ms: number;
}

/** What a worker needs from its server. */
export interface WorkerHost {
  readonly ticker: Ticker;
  /** Sends a batch of results to the controller of link `tag` (dropped when that link is gone). */
  sendResults(w: number, tag: string, batch: ResultBatch): void;
  /** Milliseconds the worker spent on a session's jobs, for the server's record of shares. */
  used(tag: string, ms: number): void;
  /** Milliseconds of lateness dropped (see CATCH_UP_MS). */
  lagged(ms: number): void;
}

/** Run time of a job: noop none, sleep and spin their first argument (ms). Other names take none. */
export function runTimeOf(fn: string, value: unknown): number {
  if (fn !== 'sleep' && fn !== 'spin') return 0;
  const args = Array.isArray(value) ? value[0] : undefined;
  const ms = Array.isArray(args) ? Number(args[0]) : 0;
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

export class SimWorker {
  readonly definitions = new Definitions();
  readonly queue = new FairQueue<SimJob>();
  private readonly hold: ResultHold;
  /** When the last job ended (performance.now() time): the worker's own clock. */
  private clock = performance.now();
  private running: { job: SimJob; start: number; end: number; version: number; known: boolean } | undefined;
  private waking = false;
  private stopped = false;
  /** Told to refresh while another session's job ran: goes once it ends. */
  private retireAfterJob: (() => void) | undefined;
  /** Jobs received and not yet answered, per session, as [first id, count] runs in order (for a lost server's report). */
  private readonly unanswered = new Map<string, Deque<[number, number]>>();
  private readonly wallOffset = Date.now() - performance.now();

  constructor(
    readonly w: number,
    readonly pid: number,
    private readonly host: WorkerHost,
  ) {
    this.hold = new ResultHold(
      (tag, batch) => {
        this.answered(tag, batch.size);
        host.sendResults(w, tag, batch);
      },
      () => this.clock,
    );
  }

  /** Preloads the module every simulated worker announces (sim-functions.ts). */
  async preload(module: string): Promise<void> {
    await this.definitions.preload(module);
  }

  get functions(): string[] {
    return this.definitions.preloadedNames();
  }

  define(tag: string, frame: Buffer | undefined): void {
    this.definitions.define(tag, readJson<{ defs: DefinitionSpec[] }>(frame, 'definitions').defs);
  }

  /** A 'jobs' message as the controller sent it: [head, runs, ...per run: values, nbins?, binary frames]. */
  jobs(tag: string, message: Buffer[]): void {
    const runs = readJson<JobRun[]>(message[1], 'job runs');
    if (!Array.isArray(runs)) throw new ProtocolError('job runs must be a list');
    let frame = 2;
    const jobs: SimJob[] = [];
    const ranges: Array<[number, number]> = [];
    for (const run of runs) {
      const [first, count, fn, timeoutMs, binaryFrames] = Array.isArray(run) ? run : [];
      if (!Number.isSafeInteger(first) || !Number.isInteger(count) || count! < 1 || typeof fn !== 'string' || typeof timeoutMs !== 'number' || !Number.isInteger(binaryFrames)) {
        throw new ProtocolError('a job run must be [first id, count ≥ 1, function, timeout ms, binary frames]');
      }
      const valuesFrame = message[frame++];
      // Only jobs whose run time is their argument are parsed: a no-op's value is never read.
      const values = fn === 'sleep' || fn === 'spin' ? parseRun(valuesFrame, count!) : undefined;
      const nbins = binaryFrames! > 0 ? readUint32s(message[frame++], count!, 'binary frame counts') : undefined;
      for (let i = 0; i < count!; i++) {
        jobs.push({ controller: tag, id: first! + i, fn: fn!, ms: values ? runTimeOf(fn!, values[i]) : 0 });
        if (nbins) frame += nbins[i]!;
      }
      ranges.push([first!, count!]);
    }
    if (this.stopped) return;
    let pending = this.unanswered.get(tag);
    if (!pending) this.unanswered.set(tag, (pending = new Deque()));
    for (const range of ranges) pending.push(range);
    for (const job of jobs) this.queue.push(job);
    if (!this.running && !this.waking) this.step();
  }

  /** The session on link `tag` ended: its queued jobs, its definitions and its held results go. */
  forget(tag: string): void {
    this.definitions.forget(tag);
    this.queue.forget(tag);
    this.hold.drop(tag);
    this.unanswered.delete(tag);
  }

  setWeight(tag: string, weight: number): void {
    this.queue.setWeight(tag, weight);
  }

  /** Refresh on a shared server: go now unless another session's job runs, else once it ends. */
  retireWhenFree(tag: string, retire: () => void): void {
    if (this.running && this.running.job.controller !== tag) this.retireAfterJob = retire;
    else retire();
  }

  /** Killed (or its server went quiet): nothing more runs or is sent. */
  stop(): void {
    this.stopped = true;
  }

  /** Ids of every job received and not answered (queued, running, or with its result still held). */
  unansweredIds(): number[] {
    const ids: number[] = [];
    for (const pending of this.unanswered.values()) for (const [first, count] of pending) for (let i = 0; i < count; i++) ids.push(first + i);
    return ids;
  }

  /** Runs what it can now; when a job is still running, asks to be woken when it ends. */
  private step(): void {
    this.waking = false;
    if (this.stopped) return;
    const now = performance.now();
    for (;;) {
      const running = this.running;
      if (running) {
        if (running.end > now) {
          this.waking = true;
          this.host.ticker.at(running.end, () => this.step());
          return;
        }
        this.running = undefined;
        this.finish(running);
        if (this.stopped) return;
        if (this.retireAfterJob) {
          this.hold.flush();
          return this.retireAfterJob();
        }
      }
      const job = this.queue.shift();
      if (!job) return;
      // Back to back with the job before, unless the worker was idle (it starts when it came) or the process fell behind.
      let start = this.clock;
      if (this.idle) start = now;
      else if (this.clock < now - CATCH_UP_MS) {
        this.host.lagged(now - this.clock);
        start = now;
      }
      this.idle = false;
      const definition = this.definitions.lookup(job.controller, job.fn);
      this.running = { job, start, end: start + (definition ? job.ms : 0), version: definition?.version ?? 0, known: definition !== undefined };
    }
  }

  /** Nothing to run since the last job ended: the next one starts when it comes. */
  private idle = true;

  private finish({ job, start, end, version, known }: NonNullable<SimWorker['running']>): void {
    this.clock = end;
    const runMs = end - start;
    let value: EncodedValue = NULL_RESULT;
    if (!known) value = encodeValue(describeError(this.definitions.unknownFunction(job.controller, job.fn)));
    this.hold.add(job.controller, job.id, known, value, Math.floor(this.wallOffset + start), runMs, version);
    this.queue.charge(job.controller, runMs);
    this.host.used(job.controller, runMs);
    const empty = this.queue.length === 0;
    this.idle = empty;
    if (this.hold.due(end, empty)) this.hold.flush();
  }

  /** `count` results of session `tag` went out: they were its oldest unanswered jobs. */
  private answered(tag: string, count: number): void {
    const pending = this.unanswered.get(tag);
    while (pending && count > 0) {
      const head = pending.peek();
      if (!head) return;
      const take = Math.min(count, head[1]);
      head[0] += take;
      head[1] -= take;
      count -= take;
      if (head[1] === 0) pending.shift();
    }
  }
}
