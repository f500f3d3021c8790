/**
 * The caller's side: what a notebook cell or script holds. It forks the controller child and
 * never waits on it: jobs are encoded here (so bad arguments throw at once), sent in coalesced
 * batches, and results accumulate here as they arrive, so poll() is instant.
 */
import * as zmq from 'zeromq';
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import v8 from 'node:v8';
import {
  decodeParsed,
  NO_FRAMES,
  encodeValue,
  frames,
  ipcEndpoint,
  linkOptions,
  Outbox,
  readHead,
  readJson,
  textFrame,
  type DefinitionSpec,
  receiveLoop,
  type OutputRow,
  type Command,
  type ControllerToCaller,
  type CallerToController,
  inGroups,
  isPlainValue,
  MAX_FUNCTION_NAME,
  MAX_MESSAGE_BYTES,
  SerializationError,
  packPlainValues,
  packValues,
  slicePacked,
  uint32Bytes,
  type PackedValues,
} from '../protocol/index.js';
import { YOUNG_GENERATION_FLAGS } from '../runtime/v8-flags.js';
import { withMallocTunables } from '../runtime/malloc-tunables.js';
import { checkedOption, checkSpawnOptions } from './spawn-options.js';
import { inheritableExecArgv } from './exec-argv.js';
import { parseServerUrl } from '../protocol/server-url.js';
import { ArrivedResult, MessageTimings } from './job-result.js';
import { claimAnswered, claimFailed, PendingJobs, type Claim, type Segment } from './pending.js';
import { IdleAwareReceiver } from './idle-receiver.js';
import { CallerRows } from '../protocol/rows.js';
import { checkDefinitionSyntax } from './definition-syntax.js';
import { checkListen, resolveLinkSecurity, serverKeyFor } from '../protocol/link-security.js';
import { drawProgress } from './terminal-progress.js';
import type { ControllerLaunch } from '../protocol/launch.js';
import { RemoteError, ControllerExitedError, QueueFullError, type JobOptions, type JobItem, type JobResult, type JobOutput, type Progress, type SpawnOptions, type WaitOptions } from './types.js';

const controllerScript = fileURLToPath(new URL('../embedded/controller-main.js', import.meta.url));

/** Caller → controller messages stay below this many jobs so no single message grows huge. */
const MAX_JOBS_PER_MESSAGE = 20_000;
/** Jobs handed to the controller and not yet answered; the rest wait here, encoded, so the controller's memory stays bounded. */
const CONTROLLER_WINDOW = 100_000;

/** Encoded items: their texts packed in groups (inGroups), their binary frames in order, and each one's frame count when any has frames. */
interface EncodedItems {
  count: number;
  groups: PackedValues[];
  bins: Uint8Array[];
  nbins?: number[];
}

/**
 * Jobs of one addJob call (ids `first`, `first + 1`, ...), at most one pack group of them, handed to
 * the controller from `next` on as its window allows: a queued job costs its bytes and an offset.
 */
interface OutgoingChunk {
  count: number;
  packed: PackedValues;
  bins: Uint8Array[];
  nbins?: number[];
  first: number;
  fn: string;
  timeoutMs: number;
  next: number;
  nextBin: number;
}

/** Listeners on these wait for something the pool will say: they keep the process alive (see busy()). */
const KEEP_ALIVE_EVENTS = new Set(['event', 'output', 'exit']);

function defaultMaxQueued(): number {
  return Math.min(2_000_000, Math.floor(v8.getHeapStatistics().heap_size_limit / 2048));
}

export class ScatterGather extends EventEmitter {
  /** The function addJob uses when given no name: the first server URL's path, if any. */
  readonly defaultFunction?: string;
  /** Where servers can dial in (`tsgather server --connect <this>`), when `listen` was given. */
  listenAddress?: string;
  private readonly pending = new PendingJobs();
  private arrived: JobResult[] = [];
  private unclaimed = 0;
  private nextId = 1;
  private nextRequest = 1;
  private readonly replies = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly waiters = new Set<() => void>();
  private readonly versions = new Map<string, number>();
  private readonly outgoing: OutgoingChunk[] = [];
  /** Jobs sent to the controller whose results have not come back. */
  private inController = 0;
  private flushScheduled = false;
  /** Most jobs outstanding at once (see SpawnOptions.maxQueued). */
  readonly maxQueued: number;
  private exited?: Error;
  private dying?: Promise<undefined>;
  private readonly outbox: Outbox;
  private readonly totals = { added: 0, done: 0, failed: 0, firstAt: 0 };
  private readonly exitedPromise: Promise<void>;
  private readonly receiver: IdleAwareReceiver;
  /** Reasons, other than work outstanding, to keep the event loop alive (start-up). */
  private holds = 0;
  /** addJobAsync calls still queueing their jobs. */
  private feeding = 0;
  /** Per stream, the tag of a job's output line not yet ended with a newline. */
  private readonly openLines = new Map<string, string>();

  /** @internal use spawnScatterGather() */
  constructor(
    private readonly child: ChildProcess,
    private readonly socket: zmq.Pair,
    private readonly options: SpawnOptions,
    defaultFunction?: string,
  ) {
    super();
    this.defaultFunction = defaultFunction;
    this.maxQueued = options.maxQueued ?? defaultMaxQueued();
    this.outbox = new Outbox(socket);
    this.exitedPromise = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('exit', (code, signal) => this.controllerExited(code, signal));
    this.receiver = new IdleAwareReceiver(socket, {
      busy: () => this.busy(),
      keepAlive: (on) => this.keepAlive(on),
      handle: (message) => this.fromController(message),
      onHandlerError: (error) => this.emit('event', { kind: 'bad-message', detail: { error: String(error) } }),
    });
    void this.receiver.run();
    this.on('newListener', (event: string) => {
      if (KEEP_ALIVE_EVENTS.has(event)) this.receiver.wake();
    });
  }

  /**
   * Whether anything is awaited from the controller: jobs without a result, replies, jobs not yet
   * handed over, start-up or a close; or a listener waiting for an event, output or the exit. Only
   * then does the pool keep Node's event loop alive, so a script that forgets close() still exits
   * (and its controller child and workers go with it).
   */
  private busy(): boolean {
    return (
      this.holds > 0 ||
      this.pending.size > 0 ||
      this.replies.size > 0 ||
      this.outgoing.length > 0 ||
      (this.dying !== undefined && !this.exited) ||
      this.listenerCount('event') + this.listenerCount('output') + this.listenerCount('exit') > 0
    );
  }

  private keepAlive(on: boolean): void {
    const channel = this.child.channel as { ref?(): void; unref?(): void } | null | undefined;
    if (on) {
      this.child.ref();
      channel?.ref?.();
    } else {
      this.child.unref();
      channel?.unref?.();
    }
  }

  /** @internal Keeps the pool busy (see busy()) until the returned function is called. */
  hold(): () => void {
    this.holds++;
    this.receiver.wake();
    let released = false;
    return () => {
      if (!released) (released = true), this.holds--;
    };
  }

  /** `await using sg = await spawnScatterGather()` closes the pool at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Ships a function to every worker, present and future. Redefining a name gives a new version. */
  async define(name: string, fn: ((...args: never[]) => unknown) | string): Promise<number> {
    checkFunctionName(name, 'define');
    const source = typeof fn === 'function' ? fn.toString() : fn;
    if (typeof source !== 'string' || source.trim() === '') throw new TypeError('define() needs a function or its source text');
    await checkDefinitionSyntax(name, source);
    const version = (this.versions.get(name) ?? 0) + 1;
    this.versions.set(name, version);
    this.flush(true); // jobs added before the redefinition keep their place ahead of it
    await this.request({ t: 'define', id: 0 }, JSON.stringify({ name, version, source } satisfies DefinitionSpec));
    return version;
  }

  /**
   * Queues jobs: each item is `[args, kwargs?]`. Returns their ids at once. Every item is encoded
   * before any is queued, so one that cannot travel throws and nothing is queued. Past `maxQueued`
   * outstanding jobs it throws a QueueFullError and queues nothing (addJobAsync waits instead).
   */
  addJob(name: string, items: JobItem[], options?: JobOptions): number[];
  addJob(items: JobItem[]): number[];
  addJob(nameOrItems: string | JobItem[], maybeItems?: JobItem[], options: JobOptions = {}): number[] {
    return idsOf(this.queueJobs(nameOrItems, maybeItems, options));
  }

  private queueJobs(nameOrItems: string | JobItem[], maybeItems: JobItem[] | undefined, options: JobOptions = {}): Segment {
    this.assertRunning();
    const { name, items } = this.jobArguments(nameOrItems, maybeItems);
    if (this.held() + items.length > this.maxQueued) throw new QueueFullError(this.maxQueued, this.pending.size, this.arrived.length, items.length);
    return this.enqueue(name, this.encodeItems(name, items), 0, items.length, this.timeoutOf(options));
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
    const { name, items } = this.jobArguments(nameOrItems, maybeItems);
    const encoded = this.encodeItems(name, items);
    const ids: number[] = [];
    this.feeding++; // results() and waitForResult({ all }) wait for the jobs still to come
    try {
      await this.feed(name, encoded, this.timeoutOf(options), (segment) => {
        for (let i = 0; i < segment.count; i++) ids.push(segment.first + i);
      }, ids);
    } finally {
      this.feeding--;
      this.wake();
    }
    return ids;
  }

  /**
   * Queues `encoded` a slice at a time as room comes under maxQueued, handing each slice's segment
   * to `queued` at once. Slices are at least a quarter of maxQueued (or what is left), so a long
   * list does not go in a few jobs per result message.
   */
  private async feed(name: string, encoded: EncodedItems, timeoutMs: number, queued: (segment: Segment, start: number) => void, ids?: number[]): Promise<void> {
    const step = Math.ceil(this.maxQueued / 4);
    for (let start = 0; start < encoded.count; ) {
      if (this.room() < Math.min(step, encoded.count - start)) await this.roomFor(Math.min(step, encoded.count - start), encoded.count - start, ids);
      const end = Math.min(encoded.count, start + this.room());
      queued(this.enqueue(name, encoded, start, end, timeoutMs), start);
      start = end;
    }
  }

  private room(): number {
    return this.maxQueued - this.held();
  }

  /**
   * Waits until `want` jobs fit, or fewer once nothing is in flight. Rejects when nothing is in
   * flight and no room is left after consumers woken by the last results have had their turn.
   */
  private async roomFor(want: number, left: number, ids: number[] = []): Promise<void> {
    for (;;) {
      await this.until(() => this.room() >= want || this.pending.size === 0);
      if (this.room() > 0) return;
      await new Promise((resolve) => setImmediate(resolve));
      if (this.room() > 0) return;
      if (this.pending.size === 0) throw new QueueFullError(this.maxQueued, this.pending.size, this.arrived.length, left, ids);
    }
  }

  /** Resolves once `n` more jobs fit under maxQueued (as results arrive and are taken). */
  waitForRoom(n = 1): Promise<void> {
    if (n > this.maxQueued) return Promise.reject(new RangeError(`waitForRoom(${n}): more than maxQueued (${this.maxQueued}) can never fit`));
    return this.until(() => this.held() + n <= this.maxQueued);
  }

  /** What counts against maxQueued: jobs without a result, and results not yet taken with poll, waitForResult or results(). */
  private held(): number {
    return this.pending.size + this.arrived.length;
  }

  /** The controller child's process id (to watch its memory, say). */
  get controllerPid(): number | undefined {
    return this.child.pid;
  }

  private jobArguments(nameOrItems: string | JobItem[], maybeItems?: JobItem[]): { name: string; items: JobItem[] } {
    const name = typeof nameOrItems === 'string' ? nameOrItems : this.defaultFunction;
    const items = typeof nameOrItems === 'string' ? maybeItems : nameOrItems;
    if (!name) throw new TypeError('addJob needs a function name (or a server URL whose path names one)');
    checkFunctionName(name, 'addJob');
    if (!Array.isArray(items)) throw new TypeError(`addJob('${name}', items): items must be an array of [args, kwargs?]`);
    return { name, items };
  }

  private timeoutOf(options: JobOptions): number {
    return Math.ceil(checkedOption('timeoutMs', options.timeoutMs ?? this.options.timeoutMs ?? 0));
  }

  /** Checks every item in order, then packs them: a group at a time with one JSON.stringify when all are plain JSON, else one by one. */
  private encodeItems(name: string, items: JobItem[]): EncodedItems {
    // The items themselves unless one needs trimming: a copy filled one by one would be a holey
    // array, which JSON.stringify walks on its slow path.
    let values: unknown[] = items;
    let plain = true;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (!Array.isArray(item) || !Array.isArray(item[0]) || item.length > 2 || (item[1] !== undefined && (typeof item[1] !== 'object' || item[1] === null || Array.isArray(item[1])))) {
        throw new TypeError(`addJob('${name}'): item ${i} must be [args array, kwargs object?], e.g. [[1000], { bins: 10 }]`);
      }
      if (item.length === 2 && item[1] === undefined) {
        if (values === items) values = items.slice();
        values[i] = [item[0]];
      }
      if (!isPlainValue(values[i], 'job', i)) plain = false; // walked on regardless: what cannot travel is reported in item order
    }
    if (plain) return checkFrameSizes(name, { count: items.length, groups: inGroups(values, packPlainValues), bins: [] });
    const texts = new Array<string>(items.length);
    const bins: Uint8Array[] = [];
    let nbins: number[] | undefined;
    for (let i = 0; i < items.length; i++) {
      const encoded = encodeValue(values[i], 'job', i);
      texts[i] = encoded.text;
      if (encoded.bins.length > 0) {
        nbins ??= new Array<number>(items.length).fill(0);
        nbins[i] = encoded.bins.length;
        for (const bin of encoded.bins) bins.push(bin);
      }
    }
    return checkFrameSizes(name, { count: items.length, groups: inGroups(texts, packValues), bins, nbins });
  }

  /** Queues items `start` to `end` of `encoded` as one segment of consecutive ids, one outgoing chunk per pack group. */
  private enqueue(name: string, encoded: EncodedItems, start: number, end: number, timeoutMs: number): Segment {
    const now = Date.now();
    const count = end - start;
    const segment = this.pending.add(this.nextId, count, name, now);
    this.nextId += count;
    let binAt = encoded.nbins ? sum(encoded.nbins, 0, start) : 0;
    let groupStart = 0;
    for (const group of encoded.groups) {
      const groupEnd = groupStart + group.offsets.length - 1;
      const from = Math.max(start, groupStart);
      const to = Math.min(end, groupEnd);
      if (from < to) {
        const binCount = encoded.nbins ? sum(encoded.nbins, from, to) : 0;
        this.outgoing.push({
          first: segment.first + (from - start),
          fn: name,
          timeoutMs,
          count: to - from,
          packed: slicePacked(group, from - groupStart, to - groupStart),
          nbins: encoded.nbins?.slice(from, to),
          bins: binCount > 0 ? encoded.bins.slice(binAt, binAt + binCount) : [],
          next: 0,
          nextBin: 0,
        });
        binAt += binCount;
      }
      if (groupEnd >= end) break;
      groupStart = groupEnd;
    }
    this.unclaimed += count;
    this.totals.added += count;
    if (!this.totals.firstAt) this.totals.firstAt = now;
    this.scheduleFlush();
    this.receiver.wake();
    return segment;
  }

  /** Results that have arrived since the last poll (not those claimed by submit or map). Never waits. */
  poll(): JobResult[] {
    const taken = this.arrived;
    this.arrived = [];
    if (taken.length > 0 && this.waiters.size > 0) this.wake(); // room under maxQueued
    return taken;
  }

  /**
   * Waits until results are there and returns them (as poll does). With `all`, waits until no job
   * added with addJob is outstanding. With `timeout` (ms), returns what has arrived by then.
   */
  async waitForResult(options: WaitOptions = {}): Promise<JobResult[]> {
    const done = () => (options.all ? this.drained() : this.arrived.length > 0 || this.drained());
    const waiting = this.until(done, options.timeout);
    await (options.all ? this.withProgressBar(waiting) : waiting);
    return this.poll();
  }

  /** Runs one job and resolves with its value, or rejects with a RemoteError. */
  async submit<T = unknown>(name: string, args: unknown[] = [], kwargs?: Record<string, unknown>, options?: JobOptions): Promise<T> {
    const [value] = await this.claimValues(name, [kwargs === undefined ? [args] : [args, kwargs]], options);
    return value as T;
  }

  /** Runs one job per item and resolves with their values in input order; once all are back, rejects with the failure earliest in input order. */
  async map<T = unknown>(name: string, items: JobItem[], options?: JobOptions): Promise<T[]> {
    return (await this.withProgressBar(this.claimValues(name, items, options))) as T[];
  }

  /** Like map, but resolves with every JobResult (failures included) in input order. */
  mapResults(name: string, items: JobItem[], options?: JobOptions): Promise<JobResult[]> {
    return this.withProgressBar(this.claimResults(name, items, options));
  }

  /** Results in completion order, until nothing added with addJob is outstanding. */
  async *results(): AsyncGenerator<JobResult> {
    for (;;) {
      if (this.arrived.length > 0) {
        // Taken a batch at a time (shift() one by one is quadratic on a large backlog); what a
        // consumer that stops early has not seen goes back for poll().
        const batch = this.poll();
        let next = 0;
        try {
          while (next < batch.length) yield batch[next++]!;
        } finally {
          if (next < batch.length) this.arrived = batch.slice(next).concat(this.arrived);
        }
        continue;
      }
      if (this.drained()) return;
      await this.until(() => this.arrived.length > 0 || this.drained());
    }
  }

  /** 'refresh': kill and refork every worker everywhere (nothing queued is lost); 'die': stop it all; 'status'. */
  async command(cmd: Command): Promise<unknown> {
    if (cmd === 'die') return (this.dying ??= this.die());
    this.flush(true);
    return this.request({ t: 'command', id: 0, cmd });
  }

  /** Once only: a second die (two close() calls, say) waits for the first rather than racing the controller's exit. */
  private async die(): Promise<undefined> {
    if (this.exited) return undefined;
    this.flush(true);
    await this.request({ t: 'command', id: 0, cmd: 'die' });
    if (this.child.connected) this.child.disconnect(); // the controller stops when its channel closes
    await this.closed();
    return undefined;
  }

  status(): Promise<Status> {
    return this.command('status') as Promise<Status>;
  }

  /** Adds a compute server while running. */
  async connect(url: string): Promise<void> {
    parseServerUrl(url);
    await this.request({ t: 'connect', id: 0, url });
  }

  /** Stops the controller (and the embedded server) if it is still running. */
  async close(): Promise<void> {
    if (!this.exited) await this.command('die');
    else this.socket.close();
  }

  /** Nothing added with addJob or addJobAsync is outstanding, or still to be queued. */
  private drained(): boolean {
    return this.unclaimed === 0 && this.feeding === 0;
  }

  /** Jobs added with addJob whose results have not arrived yet. */
  get outstanding(): number {
    return this.unclaimed;
  }

  get progress(): Progress {
    const elapsed = (Date.now() - (this.totals.firstAt || Date.now())) / 1000;
    const finished = this.totals.done + this.totals.failed;
    return {
      done: this.totals.done,
      failed: this.totals.failed,
      total: this.totals.added,
      outstanding: this.totals.added - finished,
      rate: elapsed > 0 ? finished / elapsed : 0,
    };
  }

  // ---- internals ----------------------------------------------------------------------------

  private barShown = false;

  /** In a terminal, a progress bar while `waiting` runs (one at a time; opt out with `progress: false`). */
  private async withProgressBar<T>(waiting: Promise<T>): Promise<T> {
    if (this.options.progress === false || !process.stdout.isTTY || this.barShown) return waiting;
    this.barShown = true;
    const stop = drawProgress(this, process.stdout);
    try {
      return await waiting;
    } finally {
      stop();
      this.barShown = false;
    }
  }

  /** Queues the items; their whole results resolve together, in input order. */
  private claimResults(name: string, items: JobItem[], options?: JobOptions): Promise<JobResult[]> {
    return this.claim(name, items, options, (resolve) => ({ results: new Array<JobResult>(items.length), values: undefined, failure: undefined, open: items.length, settle: (claim) => resolve(claim.results!) }));
  }

  /** Queues the items; their values resolve together, in input order, or it rejects with the failure earliest in input order. */
  private claimValues(name: string, items: JobItem[], options?: JobOptions): Promise<unknown[]> {
    return this.claim(name, items, options, (resolve, reject) => ({
      results: undefined,
      values: new Array<unknown>(items.length),
      failure: undefined,
      open: items.length,
      settle: (claim) => (claim.failure ? reject(claim.failure.error) : resolve(claim.values!)),
    }));
  }

  /** Queues the items as one segment, or as several as room comes when they do not fit under maxQueued at once. */
  private claim<T>(name: string, items: JobItem[], options: JobOptions | undefined, makeClaim: (resolve: (value: T[]) => void, reject: (error: Error) => void) => Claim): Promise<T[]> {
    try {
      this.assertRunning();
      this.jobArguments(name, items);
      const encoded = this.encodeItems(name, items);
      const timeoutMs = this.timeoutOf(options ?? {});
      if (items.length === 0) return Promise.resolve([]);
      return new Promise((resolve, reject) => {
        const claim = makeClaim(resolve, reject);
        this.feed(name, encoded, timeoutMs, (segment, start) => {
          segment.claim = claim;
          segment.claimAt = start;
          this.unclaimed -= segment.count;
        }).catch(reject);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Hands queued jobs to the controller, as far as its window allows (`force`: all of them, so
   * that a definition or command that follows does not overtake them).
   */
  private flush(force = false): void {
    this.flushScheduled = false;
    if (this.exited) return;
    let credit = force ? Infinity : CONTROLLER_WINDOW - this.inController;
    // Top up in sizeable steps rather than a few jobs per result message.
    if (!force && credit < Math.min(CONTROLLER_WINDOW / 4, this.queuedHere())) return;
    while (credit > 0 && this.outgoing.length > 0) {
      const chunk = this.outgoing[0]!;
      const end = Math.min(chunk.count, chunk.next + Math.min(credit, MAX_JOBS_PER_MESSAGE));
      const count = end - chunk.next;
      const binCount = chunk.nbins ? sum(chunk.nbins, chunk.next, end) : 0;
      const { values, offsets } = slicePacked(chunk.packed, chunk.next, end);
      const head: CallerToController = { t: 'jobs', first: chunk.first + chunk.next, count, fn: chunk.fn };
      if (chunk.timeoutMs > 0) head.timeoutMs = chunk.timeoutMs;
      this.outbox.post([
        ...frames(head),
        values,
        uint32Bytes(offsets),
        binCount > 0 ? uint32Bytes(Uint32Array.from(chunk.nbins!.slice(chunk.next, end))) : '',
        ...chunk.bins.slice(chunk.nextBin, chunk.nextBin + binCount),
      ]);
      chunk.next = end;
      chunk.nextBin += binCount;
      credit -= count;
      this.inController += count;
      if (chunk.next === chunk.count) this.outgoing.shift();
    }
  }

  /** Jobs added but still held here, not yet handed to the controller. */
  private queuedHere(): number {
    let n = 0;
    for (const chunk of this.outgoing) n += chunk.count - chunk.next;
    return n;
  }

  private request(head: { t: 'define' | 'connect' | 'command'; id: number } & Record<string, unknown>, ...rest: string[]): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.replies.set(id, { resolve, reject });
      this.receiver.wake();
      this.outbox.post(frames({ ...head, id } as never, ...rest));
    });
  }

  private fromController(message: Buffer[]): void {
    const head = readHead<ControllerToCaller>(message[0]);
    switch (head.t) {
      case 'results':
        return this.results_(head, message);
      case 'output':
        return this.output({ job: head.job, worker: head.w, server: head.server, host: head.host, stream: head.stream, text: textFrame(message[1], 'output') });
      case 'event':
        return void this.emit('event', { kind: head.kind, detail: head.detail });
      case 'reply': {
        const waiter = this.replies.get(head.id);
        if (!waiter) return;
        this.replies.delete(head.id);
        if (!head.ok) return waiter.reject(new Error(head.error));
        try {
          waiter.resolve(message[1]?.length ? readJson(message[1], 'reply value') : undefined);
        } catch (error) {
          waiter.reject(error as Error);
        }
        return;
      }
      case 'ready':
        this.listenAddress = head.listen;
        return void this.emit('ready', head);
    }
  }

  private results_(head: Extract<ControllerToCaller, { t: 'results' }>, message: Buffer[]): void {
    const rows = new CallerRows(message[1]);
    const values = readJson<unknown[]>(message[2], 'result values');
    const out = readJson<OutputRow[]>(message[3], 'job output');
    const bins = message.slice(4);
    const outputs = new Map<number, string>();
    // One worker description per message: every result in it came from that worker.
    const worker = { server: head.server, host: head.host, id: head.w, pid: head.pid };
    for (const [job, stream, text] of out) {
      outputs.set(job, (outputs.get(job) ?? '') + text);
      this.output({ job, worker: head.w, server: head.server, host: head.host, stream, text });
    }
    let timings: MessageTimings | undefined; // map's values need none
    for (let row = 0; row < rows.count; row++) {
      const id = rows.job(row);
      const segment = this.pending.take(id);
      if (!segment) continue;
      this.inController--;
      let value: unknown;
      let succeeded = rows.ok(row);
      try {
        const binCount = rows.binCount(row);
        const binStart = rows.binStart(row);
        value = decodeParsed(values[rows.valueIndex(row)], rows.plain(row), binCount > 0 ? bins.slice(binStart, binStart + binCount) : NO_FRAMES);
      } catch (error) {
        value = { name: 'DecodeError', message: `result could not be decoded: ${(error as Error).message}` };
        succeeded = false;
      }
      if (succeeded) this.totals.done++;
      else this.totals.failed++;
      const claim = segment.claim;
      if (claim?.values) {
        const index = segment.claimAt + id - segment.first;
        if (succeeded) claim.values[index] = value;
        else claimFailed(claim, index, new RemoteError(value as { name: string; message: string; stack?: string }, id));
        claimAnswered(segment, claim);
        continue;
      }
      timings ??= new MessageTimings(rows.count, Date.now());
      const timingsAt = timings.add(segment.queuedAt, rows.dispatchedAt(row), rows.startedAt(row), rows.runMs(row));
      const error = succeeded ? undefined : new RemoteError(value as { name: string; message: string; stack?: string }, id);
      const result = new ArrivedResult(id, succeeded, succeeded ? value : undefined, error, segment.fn, rows.version(row), rows.attempts(row), worker, timings, timingsAt);
      if (outputs.size > 0) {
        const output = outputs.get(id);
        if (output !== undefined) result.output = output;
      }
      if (claim) {
        claim.results![segment.claimAt + id - segment.first] = result;
        claimAnswered(segment, claim);
      } else {
        this.unclaimed--;
        this.arrived.push(result);
      }
    }
    this.emit('progress', this.progress);
    if (this.outgoing.length > 0) this.flush();
    this.wake();
  }

  private output(output: JobOutput): void {
    if (this.listenerCount('output') > 0) this.emit('output', output);
    else if (this.options.echo !== false && output.text !== '') {
      const tag = `[${output.job === null ? '' : `job ${output.job} `}w${output.worker}@${output.host}] `;
      // A line a job left open is continued by that job's next output, or ended before another's.
      const open = this.openLines.get(output.stream);
      const start = open === tag ? '' : open === undefined ? tag : `\n${tag}`;
      const text = output.text.replace(/\n(?!$)/g, `\n${tag}`);
      if (text.endsWith('\n')) this.openLines.delete(output.stream);
      else this.openLines.set(output.stream, tag);
      (output.stream === 'stderr' ? process.stderr : process.stdout).write(start + text);
    }
  }

  private until(condition: () => boolean, timeoutMs?: number): Promise<void> {
    if (condition()) return Promise.resolve();
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        if (this.exited) finish(this.exited);
        else if (condition()) finish();
      };
      const finish = (error?: Error) => {
        this.waiters.delete(check);
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      if (timeoutMs !== undefined) timer = setTimeout(() => finish(), timeoutMs);
      this.waiters.add(check);
    });
  }

  private wake(): void {
    for (const check of [...this.waiters]) check();
  }

  private assertRunning(): void {
    if (this.exited) throw this.exited;
  }

  private closed(): Promise<void> {
    return this.exitedPromise;
  }

  private controllerExited(code: number | null, signal: string | null): void {
    const expected = this.replies.size === 0 && this.unclaimed === 0 && !this.pending.hasOpenClaims();
    this.exited = new ControllerExitedError(code, signal, this.pending.size);
    this.socket.close();
    for (const { reject } of this.replies.values()) reject(this.exited);
    this.replies.clear();
    let timings: MessageTimings | undefined; // one for all, like a results message
    const nowhere = { server: '', host: '', id: -1, pid: -1 };
    // Collected first: answering a claim's last job detaches it from its segment.
    const unanswered = [...this.pending.unanswered()].filter(([, segment]) => segment.claim);
    for (const [id, segment] of unanswered) {
      const claim = segment.claim!;
      const index = segment.claimAt + id - segment.first;
      if (claim.results) {
        timings ??= new MessageTimings(this.pending.size, Date.now());
        claim.results[index] = new ArrivedResult(id, false, undefined, this.exited, segment.fn, 0, 0, nowhere, timings, timings.add(segment.queuedAt, 0, 0, 0));
      } else claimFailed(claim, index, this.exited);
      segment.open--;
      claimAnswered(segment, claim);
    }
    this.wake();
    this.emit('exit', { code, signal, expected });
  }
}

export type Status = Record<string, unknown> & { servers: unknown[]; workers: number; queued: number; done: number; failed: number };


function idsOf(segment: Segment): number[] {
  const ids = new Array<number>(segment.count);
  for (let i = 0; i < segment.count; i++) ids[i] = segment.first + i;
  return ids;
}

/**
 * A frame over ZeroMQ's limit would cost the link its connection and the message: refused here,
 * with the job it belongs to. Groups hold one value only when that value alone is that large.
 */
function checkFrameSizes(name: string, encoded: EncodedItems): EncodedItems {
  const tooLarge = (index: number, bytes: number, what: string) =>
    new SerializationError(`addJob('${name}'): job ${index}'s ${what} is ${Math.round(bytes / 1048576)} MB encoded; one frame carries at most ${MAX_MESSAGE_BYTES / 1048576} MB`);
  let index = 0;
  for (const group of encoded.groups) {
    if (group.values.length > MAX_MESSAGE_BYTES) throw tooLarge(index, group.values.length, 'arguments');
    index += group.offsets.length - 1;
  }
  let bin = 0;
  for (let i = 0; encoded.nbins && i < encoded.count; i++) {
    for (let end = bin + encoded.nbins[i]!; bin < end; bin++) {
      if (encoded.bins[bin]!.byteLength > MAX_MESSAGE_BYTES) throw tooLarge(i, encoded.bins[bin]!.byteLength, 'binary value');
    }
  }
  return encoded;
}

function sum(values: number[], start: number, end: number): number {
  let total = 0;
  for (let i = start; i < end; i++) total += values[i]!;
  return total;
}


/**
 * Starts a controller child process. With no URLs it also starts an embedded compute server on
 * this machine with one worker per core; with URLs (`tcp://host:port[/fn][?workers=N]`) it dials
 * those servers. `listen` lets further servers dial in (`tsgather server --connect ...`).
 */
export async function spawnScatterGather(urls: string[] = [], options: SpawnOptions = {}): Promise<ScatterGather> {
  checkSpawnOptions(options);
  const addresses = urls.map(parseServerUrl);
  const embeddedWorkers = urls.length === 0 && options.embedded !== false ? options.workers ?? os.availableParallelism() : undefined;
  // Key files are read and every link checked here, so a mistake fails this call with a clear error.
  const security = resolveLinkSecurity(options);
  for (const address of addresses) serverKeyFor(address, security);
  const listen = options.listen ? [options.listen].flat() : [];
  checkListen(listen, security);
  const callerEndpoint = ipcEndpoint('caller');
  const socket = new zmq.Pair(linkOptions({}));
  await socket.bind(callerEndpoint);
  const launch: ControllerLaunch = {
    callerEndpoint,
    controllerId: `controller-${randomUUID()}`,
    urls,
    listen,
    embedded: embeddedWorkers
      ? { workers: embeddedWorkers, workerHeapMb: options.workerHeapMb, workerMaxRssMb: options.workerMaxRssMb, spareWorkers: options.spareWorkers }
      : undefined,
    retries: options.retries ?? 1,
    timeoutRetries: options.timeoutRetries ?? 0,
    heartbeatMs: options.heartbeatMs ?? 1000,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 5000,
    security,
    logLevel: options.logLevel,
  };
  const child = fork(controllerScript, [], {
    // The caller's own flags come last, so they win; those naming the caller's own program stay behind.
    execArgv: [...YOUNG_GENERATION_FLAGS, ...inheritableExecArgv(process.execArgv)],
    env: { ...withMallocTunables(process.env), TSGATHER_CONTROLLER: JSON.stringify(launch) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
  });
  const sg = new ScatterGather(child, socket, options, addresses.find((a) => a.fn)?.fn);
  try {
    await untilReady(sg, addresses.map((a) => ({ url: a.endpoint, workers: a.workers })), embeddedWorkers, options.connectTimeoutMs ?? 15_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return sg;
}

/** Waits for the controller, then for every server to be up with its workers (all of them for the embedded one). */
function untilReady(sg: ScatterGather, servers: Array<{ url: string; workers?: number }>, embeddedWorkers: number | undefined, timeoutMs: number): Promise<void> {
  // Start-up keeps the process alive and reads each event as it comes; released the moment it is over.
  const release = sg.hold();
  return new Promise((resolve, reject) => {
    const workersByServer = new Map<string, number>();
    const urlServer = new Map<string, string>();
    /** How many workers each server said it has; a server may grant fewer than a URL asked for. */
    const grantedByServer = new Map<string, number>();
    let controllerReady = false;
    let embeddedServer: string | undefined;
    /** Why a server's security handshake keeps failing, by endpoint: said if it never comes up. */
    const handshakeErrors = new Map<string, string>();
    const check = () => {
      if (!controllerReady) return;
      const urlsUp = servers.every(({ url, workers }) => {
        const id = urlServer.get(url);
        return id !== undefined && (workersByServer.get(id) ?? 0) >= Math.min(workers ?? 1, grantedByServer.get(id) ?? Infinity);
      });
      const embeddedUp = embeddedWorkers === undefined || (embeddedServer !== undefined && (workersByServer.get(embeddedServer) ?? 0) >= embeddedWorkers);
      if (urlsUp && embeddedUp) finish();
    };
    const onEvent = ({ kind, detail }: { kind: string; detail: Record<string, unknown> }) => {
      if (kind === 'server-up') {
        const url = detail.url as string | undefined;
        if (typeof detail.workers === 'number') grantedByServer.set(detail.server as string, detail.workers);
        if (url) urlServer.set(parseServerUrl(url).endpoint, detail.server as string);
        else embeddedServer ??= detail.server as string;
      } else if (kind === 'worker-up') {
        workersByServer.set(detail.server as string, (workersByServer.get(detail.server as string) ?? 0) + 1);
      } else if (kind === 'server-handshake-failed' && detail.url) {
        handshakeErrors.set(parseServerUrl(detail.url as string).endpoint, String(detail.reason));
      } else if (kind === 'server-refused') {
        return finish(new Error(`server ${String(detail.url ?? detail.server)} refused the connection: ${String(detail.reason)}`));
      } else if (kind === 'controller-failed') {
        return finish(new Error(`the controller could not start: ${String(detail.reason)}`));
      } else if (kind === 'embedded-server-failed') {
        return finish(new Error(`the embedded compute server could not start: ${String(detail.reason)}`));
      }
      check();
    };
    const onReady = () => {
      controllerReady = true;
      check();
    };
    const onExit = () => finish(new Error('the controller process exited during start-up; see its output above'));
    const timer = setTimeout(() => {
      const missing = servers.filter(({ url }) => !urlServer.has(url)).map(({ url }) => url);
      const why = missing.map((url) => (handshakeErrors.has(url) ? `${url} (${handshakeErrors.get(url)})` : url));
      finish(new Error(`scatter/gather did not come up within ${timeoutMs} ms${why.length ? `: no answer from ${why.join(', ')}` : ''}`));
    }, timeoutMs);
    const finish = (error?: Error) => {
      release();
      clearTimeout(timer);
      sg.off('event', onEvent).off('ready', onReady).off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    sg.on('event', onEvent).on('ready', onReady).on('exit', onExit);
  });
}

function checkFunctionName(name: unknown, call: string): void {
  if (typeof name !== 'string' || name === '') throw new TypeError(`${call}() needs a function name`);
  if (name.length > MAX_FUNCTION_NAME) throw new TypeError(`${call}(): a function name is at most ${MAX_FUNCTION_NAME} characters (got ${name.length})`);
}
