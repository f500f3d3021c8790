/**
 * A worker's runtime: the only place user code runs. Given a connected-to-be socket, it evaluates
 * shipped definitions (kept per controller) and preloaded module functions, runs jobs one at a time
 * in arrival order, and sends results back in batches. server/worker.ts boots it in a worker
 * process; tests run it in their own.
 */
import type * as zmq from 'zeromq';
// The protocol's modules one by one rather than its index: the index also loads key handling and
// CURVE (node:crypto), which a worker never uses, and every worker start pays for what it loads.
import { decodeParsed, describeError, encodeValue, NO_FRAMES, SerializationError, type EncodedValue } from '../protocol/codec.js';
import { parseRun, readUint32s } from '../protocol/job-values.js';
import { frames, joinJson, ProtocolError, readHead, readJson, type ServerToWorker, type DefinitionSpec, type FoldTag, type JobRun, type WorkerToServer } from '../protocol/messages.js';
import { MAX_MESSAGE_BYTES, Outbox, receiveLoop } from '../protocol/transport.js';
import { checkCredit } from '../protocol/stream-parts.js';
import { Definitions } from './definitions.js';
import { FairQueue } from './fair-queue.js';
import { WorkerShared } from './worker-shared.js';
import { collectParts, isStreamable, StreamCredits } from './worker-stream.js';
import { OutputCapture } from './output-capture.js';
import { ResultHold, type ResultBatch } from './result-batch.js';
import { WorkerFolds } from './worker-fold.js';
import { WorkerUsage } from './worker-usage.js';
import { isFoldTag } from '../protocol/fold-tag.js';

const RSS_CHECK_INTERVAL_MS = 10;

export interface WorkerRuntimeOptions {
  /** The worker's number on its server: its routing id is `w${id}`, and every message to the server names it. */
  id: number;
  /** A server's --module: imported by start(), its functions preloaded for every controller. */
  module?: string;
  /** Memory ceiling: over it, between jobs, the worker asks its server to recycle it. 0 or absent: none. */
  maxRssBytes?: number;
}

interface QueuedJob {
  controller: string;
  id: number;
  fn: string;
  /** The job's item as parsed: an array when it was plain JSON, else a superjson tree. */
  value: unknown;
  bins: Uint8Array[];
  timeoutMs: number;
  /** Its parts go to the caller as they come (sg.stream). */
  stream: boolean;
  /** Its value is folded here (mapReduce onServers). */
  fold: FoldTag | undefined;
}

export class WorkerRuntime {
  readonly id: number;
  readonly definitions = new Definitions();
  private readonly shared = new WorkerShared();
  private readonly credits = new StreamCredits();
  private readonly module: string | undefined;
  private readonly maxRssBytes: number;
  private readonly outbox: Outbox;
  private readonly capture: OutputCapture;
  private readonly hold: ResultHold;
  private readonly folds: WorkerFolds;
  /** Jobs per controller, taken out in proportion to each one's weight (ring buffers inside: see FairQueue). */
  private readonly queue = new FairQueue<QueuedJob>();
  private readonly usage = new WorkerUsage((ms) => this.toServer({ t: 'usage', w: this.id, ms }));
  private running = false;
  private lastJobEnd = 0;
  private current: QueuedJob | undefined;
  private outputFlushScheduled = false;
  private lastRssCheck = 0;
  /** Set once this worker asked to be recycled: it starts no further job. */
  private retiring = false;
  /** Told to drain: it takes no further job. */
  private draining = false;
  /** Told to refresh while another controller's job ran: it retires once that job is done. */
  private retireAfterJob = false;

  /** Captures the process's stdout and stderr from here on, within jobs (see OutputCapture). */
  constructor(
    private readonly socket: zmq.Dealer,
    options: WorkerRuntimeOptions,
  ) {
    this.id = options.id;
    this.module = options.module;
    this.maxRssBytes = options.maxRssBytes ?? 0;
    this.outbox = new Outbox(socket, (error) => process.stderr.write(`worker ${this.id}: send failed: ${error.message}\n`));
    this.capture = new OutputCapture(() => this.scheduleOutputFlush());
    this.hold = new ResultHold((controller, batch) => this.sendResults(controller, batch));
    this.folds = new WorkerFolds(this.hold, this.definitions, this.shared, checkFrames);
  }

  /**
   * Preloads the --module, connects to the server's worker socket at `endpoint` and says it is
   * ready; then handles messages. Resolves once the socket is closed.
   */
  async start(endpoint: string): Promise<void> {
    if (this.module) await this.definitions.preload(this.module);
    this.socket.routingId = `w${this.id}`;
    this.socket.connect(endpoint);
    this.toServer({ t: 'ready', w: this.id, pid: process.pid, functions: this.definitions.preloadedNames() });
    await receiveLoop(
      this.socket,
      (message) => this.handle(message),
      (error) => process.stderr.write(`worker ${this.id}: bad message dropped: ${describeError(error).message}\n`),
    );
  }

  /** Gives stdout and stderr back. A worker never calls it: its process ends instead. */
  close(): void {
    this.capture.close();
  }

  /** One message from the server: [controller, head, ...]. Throws ProtocolError for a malformed one. */
  handle(message: Buffer[]): void {
    const controller = message[0]!.toString();
    const head = readHead<ServerToWorker>(message[1]);
    switch (head.t) {
      case 'define':
        return this.definitions.define(controller, readJson<{ defs: DefinitionSpec[] }>(message[2], 'definitions').defs);
      case 'jobs':
        return this.handleJobs(controller, message);
      case 'forget':
        return this.forget(controller);
      case 'drain':
        return this.drain();
      case 'refresh':
        return this.refresh(controller);
      case 'put':
        if (typeof head.name !== 'string') throw new ProtocolError('put needs a name');
        return this.shared.put(controller, head.name, head.plain === true, message.slice(2), Number.isInteger(head.part) ? { index: head.part!, count: Number(head.parts) } : undefined);
      case 'collect':
        return this.collect(controller, head.id, String(head.name));
      case 'drop':
        return this.shared.drop(controller, String(head.name));
      case 'credit': {
        const { job, n } = checkCredit(head.job, head.n);
        return this.credits.credit(controller, job, n);
      }
      case 'session':
        if (!(typeof head.weight === 'number' && head.weight > 0 && Number.isFinite(head.weight))) throw new ProtocolError('a session weight must be a number > 0');
        return this.queue.setWeight(controller, head.weight);
      default:
        process.stderr.write(`worker ${this.id}: ignoring message of type ${String((head as { t: unknown }).t)}\n`);
    }
  }

  /** A controller's session ended: its queued jobs and its definitions go (a job of its running now finishes, and its result is sent as any other). */
  private forget(controller: string): void {
    this.definitions.forget(controller);
    this.queue.forget(controller);
    this.shared.forget(controller);
    this.folds.drop(controller);
    this.hold.drop(controller);
  }

  /**
   * The server is about to stop: queued jobs are dropped (its controllers run them elsewhere), the
   * running one finishes, and once every result is out the server hears 'drained'.
   */
  private drain(): void {
    this.draining = true;
    this.queue.clear();
    this.folds.cleared();
    if (!this.running) this.drained();
  }

  /**
   * A controller on a shared server asked for fresh workers: retire now when idle or running that
   * controller's own job (killed and rerun, as a refresh does), else right after the other
   * controller's job, so that no other session's job is killed under it.
   */
  private refresh(controller: string): void {
    if (this.current && this.current.controller !== controller) {
      this.retireAfterJob = true;
      return;
    }
    this.retire();
  }

  private retire(): void {
    this.retiring = true;
    this.folds.flushAll();
    this.hold.flush();
    this.usage.flush();
    this.toServer({ t: 'retire', w: this.id });
  }

  private drained(): void {
    this.folds.flushAll();
    this.hold.flush();
    this.usage.flush();
    this.toServer({ t: 'drained', w: this.id });
  }

  private handleJobs(controller: string, message: Buffer[]): void {
    const runs = readJson<JobRun[]>(message[2], 'job runs');
    if (!Array.isArray(runs)) throw new ProtocolError('job runs must be a list');
    let frame = 3;
    const jobs: QueuedJob[] = [];
    for (const run of runs) {
      const [first, count, fn, timeoutMs, binaryFrames, stream, fold] = Array.isArray(run) ? run : [];
      if (!Number.isSafeInteger(first) || !Number.isInteger(count) || count! < 1 || typeof fn !== 'string' || typeof timeoutMs !== 'number' || !Number.isInteger(binaryFrames) || !isFoldTag(fold)) {
        throw new ProtocolError('a job run must be [first id, count ≥ 1, function, timeout ms, binary frames, stream?, fold?]');
      }
      const values = parseRun(message[frame++], count!);
      const nbins = binaryFrames! > 0 ? readUint32s(message[frame++], count!, 'binary frame counts') : undefined;
      for (let i = 0; i < count!; i++) {
        const n = nbins ? nbins[i]! : 0;
        jobs.push({ controller, id: first! + i, fn, value: values[i], bins: n > 0 ? message.slice(frame, frame + n) : NO_FRAMES, timeoutMs, stream: stream === 1, fold });
        frame += n;
      }
    }
    if (this.draining) return; // its server is stopping: the controller runs them elsewhere
    // Nothing is queued from a message that turns out malformed part way.
    for (const job of jobs) this.queue.push(job);
    this.folds.busy(jobs);
    if (!this.running && !this.retiring) void this.runQueue();
  }

  private async runQueue(): Promise<void> {
    this.running = true;
    const queue = this.queue;
    const hold = this.hold;
    // Start times are wall-clock (comparable with the caller's queue and finish times), taken from
    // the monotonic clock every job reads anyway: one Date.now() per wake-up rather than per job.
    let wallOffset = Date.now() - performance.now();
    while (queue.length > 0 && !this.retiring) {
      const job = queue.shift()!;
      if (job.timeoutMs > 0) {
        hold.flush(); // results of earlier jobs must not die with this one if it times out
        this.toServer({ t: 'running', w: this.id, job: job.id, timeoutMs: job.timeoutMs });
        // Sends leave only when the event loop turns, and a job that spins never lets it: send first.
        await this.outbox.flushed();
      }
      const t0 = performance.now();
      const startedAt = Math.floor(wallOffset + t0);
      const definition = this.definitions.lookup(job.controller, job.fn);
      this.shared.select(job.controller);
      this.current = job;
      this.capture.begin(job.id);
      try {
        if (!definition) throw this.definitions.unknownFunction(job.controller, job.fn);
        const reducerReady = job.fold && this.folds.ready(job.controller, job.fold);
        if (reducerReady) await reducerReady; // its imports are loading: its jobs fail if one cannot
        let value = definition.fn(...argumentsOf(job));
        if (job.stream || isStreamable(value)) {
          hold.flush(); // earlier results go before this job's parts
          value = await this.parts(job, value);
          wallOffset = Date.now() - performance.now();
        } else if (value && typeof (value as PromiseLike<unknown>).then === 'function') {
          hold.flush(); // don't hold finished results while this job waits
          value = await value;
          wallOffset = Date.now() - performance.now(); // the wall clock may have been set meanwhile
        }
        this.record(job, true, value, startedAt, t0, definition.version);
      } catch (error) {
        this.record(job, false, describeError(error), startedAt, t0, definition?.version ?? 0);
      } finally {
        this.capture.end();
        this.current = undefined;
      }
      if (job.timeoutMs > 0) {
        hold.flush(); // its result is out before the server's timer is disarmed
        this.toServer({ t: 'ran', w: this.id, job: job.id });
      }
      if (this.retireAfterJob) {
        this.retire();
        break;
      }
      if (this.folds.size > 0) this.folds.flushDue(performance.now());
      if (this.overMemoryCeiling()) {
        this.retiring = true;
        this.folds.flushAll();
        hold.flush();
        this.toServer({ t: 'recycle', w: this.id, rssMb: Math.round(process.memoryUsage.rss() / 1048576) });
        break;
      }
      if (hold.due(this.lastJobEnd, queue.length === 0)) {
        hold.flush();
        // A send posted while an earlier one still awaits its turn leaves only when the event loop
        // turns, which a sync job never lets happen: let it go now, so a result never waits for later jobs.
        if (queue.length > 0) await this.outbox.flushed();
      }
    }
    this.running = false;
    if (this.draining) this.drained();
    else this.folds.idle();
  }

  /** A streaming job's parts go out as they come, its result is how many; parts of a job not asked to stream make its result a list. */
  private async parts(job: QueuedJob, value: unknown): Promise<unknown> {
    const awaited = value && typeof (value as PromiseLike<unknown>).then === 'function' ? await value : value;
    if (!job.stream) return isStreamable(awaited) ? collectParts(awaited) : awaited;
    const parts = isStreamable(awaited) ? awaited : [awaited];
    return this.credits.stream(
      job.controller,
      job.id,
      parts,
      (batch) => this.outbox.post([job.controller, ...frames({ t: 'parts', w: this.id, job: job.id, n: batch.n, count: batch.count }, batch.values, ...batch.rest)]),
      () => this.outbox.flushed(),
    );
  }

  private record(job: QueuedJob, ok: boolean, value: unknown, startedAt: number, t0: number, version: number): void {
    this.lastJobEnd = performance.now();
    const runMs = this.lastJobEnd - t0;
    if (job.fold && ok) this.folds.fold(job.controller, job.id, job.fold, value, startedAt, runMs, version);
    else {
      if (job.fold) this.folds.failed(job.controller, job.fold); // its call's partial goes before its failure
      let encoded: EncodedValue;
      try {
        encoded = checkFrames(job.id, encodeValue(value, 'result'));
      } catch (error) {
        ok = false;
        encoded = encodeValue(describeError(error));
      }
      this.hold.add(job.controller, job.id, ok, encoded, startedAt, runMs, version);
    }
    this.takeOutput(job);
    this.queue.charge(job.controller, runMs);
    this.usage.ran(job.controller, runMs, this.lastJobEnd);
  }

  private takeOutput(job: QueuedJob): void {
    const taken = this.capture.take();
    if (taken.length === 0) return;
    this.hold.addOutput(job.controller, job.id, taken);
  }

  /** Runs once the job yields (an await), so output of long async jobs streams; sync jobs' output goes with their result. */
  private scheduleOutputFlush(): void {
    if (this.outputFlushScheduled) return;
    this.outputFlushScheduled = true;
    setImmediate(this.flushOutput);
  }

  private readonly flushOutput = (): void => {
    this.outputFlushScheduled = false;
    if (this.current) this.takeOutput(this.current);
    this.hold.flush();
  };

  private sendResults(controller: string, batch: ResultBatch): void {
    this.outbox.post([controller, ...frames({ t: 'results', w: this.id }, batch.rows.bytes(), joinJson(batch.values), JSON.stringify(batch.out), ...batch.bins)]);
  }

  /** To the server itself (an empty first frame), not relayed to a controller. */
  /** sg.gather: this worker's part of `name`, encoded now (jobs may have changed it in place). */
  private collect(controller: string, id: number, name: string): void {
    const part = this.shared.part(controller, name);
    if (!part) return this.toServer({ t: 'collected', w: this.id, id, plain: true, missing: true });
    try {
      const { text, bins, plain } = encodeValue(part.value, `part of '${name}'`);
      this.outbox.post(['', ...frames({ t: 'collected', w: this.id, id, plain } satisfies WorkerToServer, text, ...bins)]);
    } catch (error) {
      process.stderr.write(`worker ${this.id}: part of '${name}' cannot travel back: ${describeError(error).message}\n`);
      this.toServer({ t: 'collected', w: this.id, id, plain: true, missing: true });
    }
  }

  private toServer(head: WorkerToServer): void {
    this.outbox.post(['', ...frames(head)]);
  }

  private overMemoryCeiling(): boolean {
    if (!this.maxRssBytes) return false;
    const now = performance.now();
    if (now - this.lastRssCheck < RSS_CHECK_INTERVAL_MS) return false;
    this.lastRssCheck = now;
    return process.memoryUsage.rss() > this.maxRssBytes;
  }
}

function argumentsOf(job: QueuedJob): unknown[] {
  // A plain item arrives as the array it is; anything else as a superjson tree (an object).
  const item = decodeParsed(job.value, Array.isArray(job.value), job.bins);
  if (!Array.isArray(item) || !Array.isArray(item[0])) throw new TypeError(`job ${job.id} arrived without an args array`);
  const [args, kwargs] = item as [unknown[], Record<string, unknown> | undefined];
  const hasKwargs = kwargs !== undefined && kwargs !== null && Object.keys(kwargs).length > 0;
  return hasKwargs ? [...args, kwargs] : args;
}

/**
 * A frame over the links' limit would cost this worker its connection and the result with it: such
 * a result becomes a SerializationError instead. (UTF-8 takes at most 3 bytes a character.)
 */
function checkFrames(job: number, encoded: EncodedValue): EncodedValue {
  let largest = encoded.text.length * 3 > MAX_MESSAGE_BYTES ? Buffer.byteLength(encoded.text) : 0;
  for (const bin of encoded.bins) largest = Math.max(largest, bin.byteLength);
  if (largest <= MAX_MESSAGE_BYTES) return encoded;
  throw new SerializationError(`the result of job ${job} has a ${Math.round(largest / 1048576)} MB frame; one frame carries at most ${MAX_MESSAGE_BYTES / 1048576} MB`);
}
