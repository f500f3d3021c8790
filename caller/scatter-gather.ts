/**
 * The caller's side: what a notebook cell or script holds. It never waits on the controller child:
 * jobs are encoded here (so bad arguments throw at once) and handed over in coalesced batches
 * (job-outbox.ts), results accumulate here as they arrive (job-ledger.ts), so poll() is instant.
 * Made by spawnScatterGather (spawn.ts).
 */
import type * as zmq from 'zeromq';
import { EventEmitter } from 'node:events';
import v8 from 'node:v8';
import { putMessage } from './shared-values.js';
import { joinParts, scatterMessage } from './scatter-values.js';
import { frames, Outbox, type Frames, type Command, type Status } from '../protocol/index.js';
import { dispatchFromController } from './controller-messages.js';
import { KEEP_ALIVE_EVENTS, type ScatterGatherEvents } from './pool-events.js';
import { parseServerUrl } from '../protocol/server-url.js';
import { runSpecOf, type RunSpec } from './job-options.js';
import { DefinitionShipper, type SyncedModule } from './definition-shipping.js';
import { defaultBase } from './definition-modules.js';
import { encodeItems, jobArguments, type EncodedItems } from './job-encoding.js';
import { JobLedger } from './job-ledger.js';
import { JobOutbox } from './job-outbox.js';
import { holdChild, IdleAwareReceiver, type ControllerHandle } from './idle-receiver.js';
import { sessionName, type SessionLink } from './session-link.js';
import { SessionDetachedError, type SessionDetached, type SessionInfo } from './session-types.js';
import { OutputEcho } from './output-echo.js';
import { Requests } from './requests.js';
import { Waiters } from './waiters.js';
import { claim, type ClaimingPool } from './claims.js';
import { Streams } from './streams.js';
import { isItemStream, overBatches, type ItemSource } from './item-stream.js';
import { ProgressDisplay } from './progress-display.js';
import { iterateResults } from './results-iteration.js';
import { QueueRoom } from './queue-room.js';
import { clusterOf, type AdaptRange, type Cluster, type ScaleRequest } from './cluster-launch.js';
import { reduceClaim, resultsClaim, valuesClaim, type Segment } from './pending.js';
import {
  ControllerExitedError,
  QueueFullError,
  type DefineOptions,
  type JobItem,
  type JobOptions,
  type JobOutput,
  type JobResult,
  type Progress,
  type SpawnOptions,
  type WaitOptions,
} from './types.js';

function defaultMaxQueued(): number {
  return Math.min(2_000_000, Math.floor(v8.getHeapStatistics().heap_size_limit / 2048));
}

export class ScatterGather extends EventEmitter<ScatterGatherEvents> {
  /** The function addJob uses when given no name: the first server URL's path, if any. */
  readonly defaultFunction?: string;
  /** Where servers can dial in (`tsgather server --connect <this>`), when `listen` was given. */
  listenAddress?: string;
  /** Most jobs outstanding at once (see SpawnOptions.maxQueued). */
  readonly maxQueued: number;
  private readonly ledger = new JobLedger();
  private readonly jobs: JobOutbox;
  private readonly requests: Requests;
  private readonly waiters = new Waiters(() => this.exited);
  private readonly definitions: DefinitionShipper;
  private readonly echo = new OutputEcho();
  private readonly receiver: IdleAwareReceiver;
  private readonly exitedPromise: Promise<void>;
  private exited?: Error;
  private dying?: Promise<undefined>;
  /** Reasons, other than work outstanding, to keep the event loop alive (start-up). */
  private holds = 0;
  /** addJobAsync calls still queueing their jobs. */
  private feeding = 0;
  private readonly room: QueueRoom;
  private readonly display: ProgressDisplay;
  /** What map, mapResults and submit need of this pool (see claims.ts). */
  private readonly claiming: ClaimingPool;
  private readonly streams: Streams;

  /** @internal use spawnScatterGather() */
  constructor(
    private readonly child: ControllerHandle,
    private readonly socket: zmq.Pair,
    private readonly options: SpawnOptions,
    defaultFunction?: string,
    private readonly link?: SessionLink,
  ) {
    super();
    this.defaultFunction = defaultFunction;
    this.maxQueued = options.maxQueued ?? defaultMaxQueued();
    this.room = new QueueRoom(this.maxQueued, this.ledger, this.waiters);
    this.display = new ProgressDisplay(this, this.ledger, options);
    const { ledger, display } = this;
    this.claiming = { options, defaultFunction, ledger, display, assertRunning: () => this.assertRunning(), feed: (...args) => this.feed(...args) };
    this.streams = new Streams(this.claiming, (job, n) => outbox.post(frames({ t: 'credit', job, n })));
    const outbox = new Outbox(socket);
    this.jobs = new JobOutbox(outbox);
    this.requests = new Requests(outbox);
    const flushJobs = () => this.jobs.flush(true); // jobs added before a (re)definition keep their place ahead of it
    this.definitions = new DefinitionShipper(options.base ?? defaultBase(), flushJobs, (spec) => this.request({ t: 'define', id: 0 }, JSON.stringify(spec)));
    link?.bind(this.ledger, this.definitions.versions, outbox, () => this.jobs.queuedHere());
    this.exitedPromise = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('exit', (code, signal) => this.controllerExited(code, signal));
    this.receiver = new IdleAwareReceiver(socket, {
      busy: () => this.busy(),
      keepAlive: (on) => holdChild(this.child, on),
      handle: this.fromController,
      onHandlerError: (error) => this.emit('event', { kind: 'bad-message', detail: { error: String(error) } }),
    });
    void this.receiver.run();
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (typeof event === 'string' && KEEP_ALIVE_EVENTS.has(event)) this.receiver.wake();
    });
  }

  /** Ships a function, with the names it uses, to every worker present and future (with `labels`: those carrying them). Redefining a name gives a new version. */
  define(name: string, fn: ((...args: never[]) => unknown) | string, options: DefineOptions = {}): Promise<number> {
    return this.definitions.define(name, fn, options);
  }

  /** Ships local module files (paths relative to the script's or notebook's directory) to every worker, with every definition. */
  sync(paths: readonly string[]): Promise<SyncedModule[]> {
    return this.definitions.sync(paths);
  }

  /**
   * Queues jobs: each item is `[args, kwargs?]`. Returns their ids at once. Every item is encoded
   * before any is queued, so one that cannot travel throws and nothing is queued. Past `maxQueued`
   * outstanding jobs it throws a QueueFullError and queues nothing (addJobAsync waits instead).
   */
  addJob(name: string, items: JobItem[], options?: JobOptions): number[];
  addJob(items: JobItem[]): number[];
  addJob(nameOrItems: string | JobItem[], maybeItems?: JobItem[], options: JobOptions = {}): number[] {
    this.assertRunning();
    const { name, items } = jobArguments(this.defaultFunction, nameOrItems, maybeItems);
    if (items.length > this.room.free) throw new QueueFullError(this.maxQueued, this.ledger.pending.size, this.ledger.arrived.length, items.length);
    return idsOf(this.enqueue(name, encodeItems(name, items), 0, items.length, runSpecOf(options, this.options)));
  }

  /**
   * Like addJob, but when the queue is full it waits for room instead of throwing; a list longer
   * than maxQueued goes in as results are taken. Every item is encoded first, so a bad one throws
   * and nothing is queued. When no room can come (no job in flight, and maxQueued held by results
   * nobody takes) it rejects with a QueueFullError whose `queued` holds the ids it did queue.
   */
  async addJobAsync(name: string, items: JobItem[], options?: JobOptions): Promise<number[]>;
  async addJobAsync(items: JobItem[]): Promise<number[]>;
  async addJobAsync(nameOrItems: string | JobItem[], maybeItems?: JobItem[], options: JobOptions = {}): Promise<number[]> {
    this.assertRunning();
    const { name, items } = jobArguments(this.defaultFunction, nameOrItems, maybeItems);
    const encoded = encodeItems(name, items);
    const ids: number[] = [];
    this.feeding++; // results() and waitForResult({ all }) wait for the jobs still to come
    try {
      await this.feed(
        name,
        encoded,
        runSpecOf(options, this.options),
        (segment) => {
          for (let i = 0; i < segment.count; i++) ids.push(segment.first + i);
        },
        ids,
        options.signal,
      );
    } finally {
      this.feeding--;
      this.waiters.wake();
    }
    return ids;
  }

  /** Resolves once `n` more jobs fit under maxQueued (as results arrive and are taken). */
  waitForRoom(n = 1): Promise<void> {
    return this.room.waitFor(n);
  }

  /** Results that have arrived since the last poll (not those claimed by submit or map). Never waits. */
  poll(): JobResult[] {
    const taken = this.takeArrived();
    this.link?.settle();
    return taken;
  }

  /**
   * Waits until results are there and returns them (as poll does). With `all`, waits until no job
   * added with addJob is outstanding. With `timeout` (ms), returns what has arrived by then.
   */
  async waitForResult(options: WaitOptions = {}): Promise<JobResult[]> {
    const done = () => (options.all ? this.drained() : this.ledger.arrived.length > 0 || this.drained());
    if (!done()) await this.display.waitForResult(options.all === true, this.waiters.until(done, options.timeout, options.signal));
    return this.poll();
  }

  /** Runs one job and resolves with its value, or rejects with a RemoteError. */
  async submit<T = unknown>(name: string, args: unknown[] = [], kwargs?: Record<string, unknown>, options?: JobOptions): Promise<T> {
    const [value] = await this.claimValues('submit', name, [kwargs === undefined ? [args] : [args, kwargs]], options);
    return value as T;
  }

  /** Runs one job per item and resolves with their values in input order; once all are back, rejects with the failure earliest in input order. */
  async map<T = unknown>(name: string, items: JobItem[] | ItemSource, options?: JobOptions): Promise<T[]> {
    if (isItemStream(items))
      return overBatches(
        items,
        (n) => this.waitForRoom(Math.min(n, this.maxQueued)),
        (batch) => this.map<T>(name, batch, options),
      );
    return (await this.claimValues('map', name, items, options)) as T[];
  }

  /**
   * Runs one job per item and folds each value into `initial` with `reducer` as it arrives (in
   * completion order), keeping no result: memory stays bounded however many items. Rejects with the
   * failure earliest in input order, a job's or the reducer's.
   */
  async mapReduce<A, V = unknown>(name: string, items: JobItem[], reducer: (accumulator: A, value: V, index: number) => A, initial: A, options?: JobOptions): Promise<A> {
    const [result] = await claim<A>(this.claiming, 'mapReduce', name, items, options, (resolve, reject) => reduceClaim(items.length, reducer, initial, resolve, reject));
    return items.length === 0 ? initial : (result as A);
  }

  /**
   * Runs one job whose function yields parts (an async generator) and gives them as they come;
   * the worker runs at most a few dozen parts ahead of what you have taken. Stopping early lets the
   * job run to its end, its parts dropped. Its failure is thrown after the parts before it.
   */
  stream<T = unknown>(name: string, args: unknown[] = [], kwargs?: Record<string, unknown>, options?: JobOptions): AsyncGenerator<T> {
    return this.streams.open<T>(name, args, kwargs, options);
  }

  /** Like map, but resolves with every JobResult (failures included) in input order. */
  mapResults(name: string, items: JobItem[] | ItemSource, options?: JobOptions): Promise<JobResult[]> {
    if (isItemStream(items))
      return overBatches(
        items,
        (n) => this.waitForRoom(Math.min(n, this.maxQueued)),
        (batch) => this.claimResults(name, batch, options),
      );
    return this.claimResults(name, items, options);
  }

  /** Results in completion order, until nothing added with addJob is outstanding (or `signal` aborts a wait for them). */
  results(options: { signal?: AbortSignal } = {}): AsyncGenerator<JobResult> {
    const { ledger, waiters, link } = this;
    const settled = link && ((pending: number) => link.settle(pending)); // a session: a result is taken as the loop comes back for the next
    return iterateResults({ ledger, waiters, take: () => this.takeArrived(), settled, drained: () => this.drained(), progress: () => this.display.iteration(), signal: options.signal });
  }

  /** 'refresh': kill and refork every worker everywhere (nothing queued is lost); 'die': stop it all; 'status'. */
  async command(cmd: Command): Promise<unknown> {
    if (cmd === 'die') return (this.dying ??= this.die());
    this.jobs.flush(true);
    return this.request({ t: 'command', id: 0, cmd });
  }

  async status(): Promise<Status> {
    const status = (await this.command('status')) as Status;
    return this.options.reporter?.status ? this.options.reporter.status(status) : status;
  }

  /**
   * Puts `value` on every worker, present and future (refreshed ones, servers that join later), as
   * `shared[name]` for the jobs of this pool; it crosses each link once. Resolves with its version.
   */
  async push(name: string, value: unknown): Promise<number> {
    const { head, rest } = putMessage(name, value);
    return (await this.request(head, ...rest)) as number;
  }

  /** Removes what push put under `name` from every worker; false when nothing was pushed under it. */
  async drop(name: string): Promise<boolean> {
    return (await this.request({ t: 'drop', id: 0, name })) as boolean;
  }

  /** Splits `array` (an Array or a TypedArray) in one contiguous part per worker up; each worker's jobs read theirs as `shared[name]`. Resolves with its version. */
  async scatter(name: string, array: unknown[] | NodeJS.TypedArray): Promise<number> {
    const { head, rest } = scatterMessage(name, array, ((await this.command('status')) as Status).workers);
    return (await this.request(head, ...rest)) as number;
  }

  /** The parts scattered as `name`, as the workers hold them now, joined in order into one array of the kind scattered. */
  async gather(name: string): Promise<unknown[] | NodeJS.TypedArray> {
    return joinParts(name, (await this.request({ t: 'gather', id: 0, name }, true)) as Buffer[]);
  }

  /** Adds a compute server while running. */
  async connect(url: string): Promise<void> {
    parseServerUrl(url);
    await this.request({ t: 'connect', id: 0, url });
  }

  /** spawnScatterGather's `cluster` launcher: scale() holds n jobs (or `{ workers }`' worth), adapt() follows the work (docs/slurm.md). */
  cluster?: Cluster;
  scale(request: ScaleRequest): Promise<void> {
    return clusterOf(this).scale(request);
  }
  adapt(range: AdaptRange = {}): void {
    clusterOf(this).adapt(range);
  }

  /** Stops the controller (and the embedded server) if it is still running. */
  async close(): Promise<void> {
    if (!this.exited) await this.command('die');
    else this.socket.close();
  }

  /** A named session: hands over every job held here and lets go; the session runs on, holding results for the next caller (docs/sessions.md). */
  async detach(): Promise<SessionDetached> {
    const name = sessionName(this.link);
    this.assertRunning();
    this.jobs.flush(true);
    const summary = await this.request({ t: 'detach', id: 0 });
    this.end(new SessionDetachedError(name));
    return summary as SessionDetached;
  }

  /** The named session this pool is attached to, if any. */
  get session(): SessionInfo | undefined {
    return this.link?.info;
  }

  /** `await using sg = await spawnScatterGather()` closes the pool at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Jobs added with addJob whose results have not arrived yet. */
  get outstanding(): number {
    return this.ledger.unclaimed;
  }

  get progress(): Progress {
    return this.ledger.progress;
  }

  /** The controller child's process id (to watch its memory, say). */
  get controllerPid(): number | undefined {
    return this.child.pid;
  }

  /** @internal Keeps the pool busy (see busy()) until the returned function is called. */
  hold(): () => void {
    this.holds++;
    this.receiver.wake();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
    };
  }

  // ---- internals ----------------------------------------------------------------------------

  /**
   * Whether anything is awaited from the controller: jobs without a result, replies, jobs not yet
   * handed over, start-up or a close; or a listener waiting for an event, output or the exit. Only
   * then does the pool keep Node's event loop alive, so a script that forgets close() still exits
   * (and its controller child and workers go with it).
   */
  private busy(): boolean {
    return (
      this.holds > 0 ||
      this.ledger.pending.size > 0 ||
      this.requests.size > 0 ||
      this.jobs.holding ||
      (this.dying !== undefined && !this.exited) ||
      this.listenerCount('event') + this.listenerCount('output') + this.listenerCount('exit') > 0
    );
  }

  /** Queues items `start` to `end` of `encoded` as one segment of consecutive ids. */
  private enqueue(name: string, encoded: EncodedItems, start: number, end: number, spec: RunSpec): Segment {
    const segment = this.ledger.add(end - start, name);
    this.jobs.add(segment.first, name, encoded, start, end, spec);
    this.receiver.wake();
    return segment;
  }

  /** Queues `encoded` a slice at a time as room comes (see QueueRoom.feed), handing each slice's segment to `queued` at once. */
  private feed(name: string, encoded: EncodedItems, spec: RunSpec, queued: (segment: Segment, start: number) => void, ids?: number[], signal?: AbortSignal): Promise<void> {
    return this.room.feed(encoded.count, (start, end) => queued(this.enqueue(name, encoded, start, end, spec), start), ids, signal);
  }

  /** Nothing added with addJob or addJobAsync is outstanding, or still to be queued. */
  private drained(): boolean {
    return this.ledger.unclaimed === 0 && this.feeding === 0;
  }

  /** Queues the items; their whole results resolve together, in input order. */
  private claimResults(name: string, items: JobItem[], options?: JobOptions): Promise<JobResult[]> {
    return claim(this.claiming, 'mapResults', name, items, options, (resolve) => resultsClaim(items.length, resolve));
  }

  /** Queues the items; their values resolve together, in input order, or it rejects with the failure earliest in input order. */
  private claimValues(method: 'map' | 'submit', name: string, items: JobItem[], options?: JobOptions): Promise<unknown[]> {
    return claim(this.claiming, method, name, items, options, (resolve, reject) => valuesClaim(items.length, resolve, reject));
  }

  /** `true` after the head: resolve with the reply's frames (a reply with binary frames). */
  private request(head: Parameters<Requests['send']>[0], ...rest: Frames | [true]): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    this.link?.flushAcks(); // a session: a reply then says the controller knows what was taken before
    const reply = rest[0] === true ? this.requests.sendForFrames(head) : this.requests.send(head, ...(rest as Frames));
    this.receiver.wake();
    return reply;
  }

  /** Once only: a second die (two close() calls, say) waits for the first rather than racing the controller's exit. */
  private async die(): Promise<undefined> {
    if (this.exited) return undefined;
    this.jobs.flush(true);
    await this.request({ t: 'command', id: 0, cmd: 'die' });
    if (this.child.connected) this.child.disconnect(); // the controller stops when its channel closes
    await this.exitedPromise;
    return undefined;
  }

  /** What the controller sends, each to the part that takes it. */
  private readonly fromController = (message: Buffer[]): void =>
    dispatchFromController(message, {
      results: (head, frames) => {
        const answered = this.ledger.record(head, frames, (output) => this.output(output));
        this.link?.received(head.seq);
        this.emit('progress', this.progress);
        this.jobs.answered(answered);
        this.waiters.wake();
      },
      output: (output) => this.output(output),
      event: (event) => void this.emit('event', event),
      reply: (head, frames) => this.requests.replied(head, frames),
      part: (head, frames) => this.streams.part(head, frames),
      ready: (head) => {
        this.listenAddress = head.listen;
        this.emit('ready', head);
      },
    });

  private output(output: JobOutput): void {
    if (this.listenerCount('output') > 0) this.emit('output', output);
    else if (this.options.echo !== false) this.echo.write(output);
  }

  private assertRunning(): void {
    if (this.exited) throw this.exited;
  }

  private controllerExited(code: number | null, signal: string | null): void {
    if (this.exited) return; // detached
    const expected = this.requests.size === 0 && this.ledger.unclaimed === 0 && !this.ledger.pending.hasOpenClaims();
    this.end(new ControllerExitedError(code, signal, this.ledger.pending.size));
    this.emit('exit', { code, signal, expected });
  }

  /** No more messages either way: the controller exited, or (a session) this pool detached. */
  private end(error: Error): void {
    this.exited = error;
    this.link?.end();
    this.jobs.close();
    this.socket.close();
    this.requests.failAll(error);
    this.ledger.failClaims(error);
    this.waiters.wake();
  }

  private takeArrived(): JobResult[] {
    const taken = this.ledger.take();
    if (taken.length > 0 && this.waiters.size > 0) this.waiters.wake(); // room under maxQueued
    return taken;
  }
}

function idsOf(segment: Segment): number[] {
  const ids = new Array<number>(segment.count);
  for (let i = 0; i < segment.count; i++) ids[i] = segment.first + i;
  return ids;
}
