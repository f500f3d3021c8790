/**
 * The pool's machinery under ScatterGather's public API (scatter-gather.ts): its parts wired
 * together (the ledger of jobs and results, the job outbox, requests and replies, the receiver that
 * lets an idle process exit, progress, claims and streams), the dispatch of what the controller
 * sends, and the pool's end (the controller exited, or a session detached).
 */
import type * as zmq from 'zeromq';
import { EventEmitter } from 'node:events';
import v8 from 'node:v8';
import { describeError, frames, Outbox, type Frames } from '../protocol/index.js';
import { dispatchFromController } from './controller-messages.js';
import { KEEP_ALIVE_EVENTS, type ScatterGatherEvents } from './pool-events.js';
import type { RunSpec } from './job-options.js';
import { DefinitionShipper } from './definition-shipping.js';
import { defaultBase } from './definition-modules.js';
import type { EncodedItems } from './job-encoding.js';
import { JobLedger } from './job-ledger.js';
import { JobOutbox } from './job-outbox.js';
import { holdChild, IdleAwareReceiver, type ControllerHandle } from './idle-receiver.js';
import type { SessionLink } from './session-link.js';
import { OutputEcho } from './output-echo.js';
import { Requests } from './requests.js';
import { Waiters } from './waiters.js';
import { claim, type ClaimingPool } from './claims.js';
import { Streams } from './streams.js';
import { ProgressDisplay } from './progress-display.js';
import { QueueRoom } from './queue-room.js';
import { resultsClaim, valuesClaim, type Segment } from './pending.js';
import { ControllerExitedError, type JobItem, type JobOptions, type JobOutput, type JobResult, type SpawnOptions } from './types.js';

function defaultMaxQueued(): number {
  return Math.min(2_000_000, Math.floor(v8.getHeapStatistics().heap_size_limit / 2048));
}

export abstract class PoolCore extends EventEmitter<ScatterGatherEvents> {
  /** The function addJob uses when given no name: the first server URL's path, if any. */
  readonly defaultFunction?: string;
  /** Where servers can dial in (`tsgather server --connect <this>`), when `listen` was given. */
  listenAddress?: string;
  /** Most jobs outstanding at once (see SpawnOptions.maxQueued). */
  readonly maxQueued: number;
  protected readonly ledger = new JobLedger();
  protected readonly jobs: JobOutbox;
  protected readonly requests: Requests;
  protected readonly waiters = new Waiters(() => this.exited);
  protected readonly definitions: DefinitionShipper;
  protected readonly echo = new OutputEcho();
  protected readonly receiver: IdleAwareReceiver;
  protected readonly exitedPromise: Promise<void>;
  protected exited?: Error;
  protected dying?: Promise<undefined>;
  /** Reasons, other than work outstanding, to keep the event loop alive (start-up). */
  protected holds = 0;
  /** addJobAsync calls still queueing their jobs. */
  protected feeding = 0;
  protected readonly room: QueueRoom;
  protected readonly display: ProgressDisplay;
  /** What map, mapResults and submit need of this pool (see claims.ts). */
  protected readonly claiming: ClaimingPool;
  protected readonly streams: Streams;

  /** @internal use spawnScatterGather() */
  constructor(
    protected readonly child: ControllerHandle,
    protected readonly socket: zmq.Pair,
    protected readonly options: SpawnOptions,
    defaultFunction?: string,
    protected readonly link?: SessionLink,
  ) {
    super();
    this.defaultFunction = defaultFunction;
    this.maxQueued = options.maxQueued ?? defaultMaxQueued();
    this.room = new QueueRoom(this.maxQueued, this.ledger, this.waiters);
    this.display = new ProgressDisplay(this, this.ledger, options);
    const { ledger, display } = this;
    this.claiming = { options, defaultFunction, ledger, display, assertRunning: () => this.assertRunning(), feed: (...args) => this.feed(...args) };
    this.streams = new Streams(
      this.claiming,
      (job, n) => outbox.post(frames({ t: 'credit', job, n })),
      (part) => this.emit('part', part),
      (job, n, error) => this.emit('event', { kind: 'part-listener-error', detail: { job, n, error: describeError(error).message } }),
    );
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

  /**
   * Whether anything is awaited from the controller: jobs without a result, replies, jobs not yet
   * handed over, start-up or a close; or a listener waiting for an event, output or the exit. Only
   * then does the pool keep Node's event loop alive, so a script that forgets close() still exits
   * (and its controller child and workers go with it).
   */
  protected busy(): boolean {
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
  protected enqueue(name: string, encoded: EncodedItems, start: number, end: number, spec: RunSpec): Segment {
    const segment = this.ledger.add(end - start, name);
    this.jobs.add(segment.first, name, encoded, start, end, spec);
    this.receiver.wake();
    return segment;
  }

  /** Queues `encoded` a slice at a time as room comes (see QueueRoom.feed), handing each slice's segment to `queued` at once. */
  protected feed(name: string, encoded: EncodedItems, spec: RunSpec, queued: (segment: Segment, start: number) => void, ids?: number[], signal?: AbortSignal): Promise<void> {
    return this.room.feed(encoded.count, (start, end) => queued(this.enqueue(name, encoded, start, end, spec), start), ids, signal);
  }

  /** Nothing added with addJob or addJobAsync is outstanding, or still to be queued. */
  protected drained(): boolean {
    return this.ledger.unclaimed === 0 && this.feeding === 0;
  }

  /** Queues the items; their whole results resolve together, in input order. */
  protected claimResults(name: string, items: JobItem[], options?: JobOptions): Promise<JobResult[]> {
    return claim(this.claiming, 'mapResults', name, items, options, (resolve) => resultsClaim(items.length, resolve));
  }

  /** Queues the items; their values resolve together, in input order, or it rejects with the failure earliest in input order. */
  protected claimValues(method: 'map' | 'submit', name: string, items: JobItem[], options?: JobOptions): Promise<unknown[]> {
    return claim(this.claiming, method, name, items, options, (resolve, reject) => valuesClaim(items.length, resolve, reject));
  }

  /** `true` after the head: resolve with the reply's frames (a reply with binary frames). */
  protected request(head: Parameters<Requests['send']>[0], ...rest: Frames | [true]): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    this.link?.flushAcks(); // a session: a reply then says the controller knows what was taken before
    const reply = rest[0] === true ? this.requests.sendForFrames(head) : this.requests.send(head, ...(rest as Frames));
    this.receiver.wake();
    return reply;
  }

  /** Once only: a second die (two close() calls, say) waits for the first rather than racing the controller's exit. */
  protected async die(): Promise<undefined> {
    if (this.exited) return undefined;
    this.jobs.flush(true);
    await this.request({ t: 'command', id: 0, cmd: 'die' });
    if (this.child.connected) this.child.disconnect(); // the controller stops when its channel closes
    await this.exitedPromise;
    return undefined;
  }

  /** What the controller sends, each to the part that takes it. */
  protected readonly fromController = (message: Buffer[]): void =>
    dispatchFromController(message, {
      results: (head, frames) => {
        const answered = this.ledger.record(head, frames, (output) => this.output(output));
        this.link?.received(head.seq);
        this.emit('progress', this.ledger.progress);
        this.jobs.answered(answered);
        this.waiters.wake();
      },
      output: (output) => this.output(output),
      event: (event) => void this.emit('event', event),
      reply: (head, frames) => this.requests.replied(head, frames),
      parts: (head, frames) => this.streams.parts(head, frames),
      ready: (head) => {
        this.listenAddress = head.listen;
        this.emit('ready', head);
      },
    });

  protected output(output: JobOutput): void {
    if (this.listenerCount('output') > 0) this.emit('output', output);
    else if (this.options.echo !== false) this.echo.write(output);
  }

  protected assertRunning(): void {
    if (this.exited) throw this.exited;
  }

  protected controllerExited(code: number | null, signal: string | null): void {
    if (this.exited) return; // detached
    const expected = this.requests.size === 0 && this.ledger.unclaimed === 0 && !this.ledger.pending.hasOpenClaims();
    this.end(new ControllerExitedError(code, signal, this.ledger.pending.size));
    this.emit('exit', { code, signal, expected });
  }

  /** No more messages either way: the controller exited, or (a session) this pool detached. */
  protected end(error: Error): void {
    this.exited = error;
    this.link?.end();
    this.jobs.close();
    this.socket.close();
    this.requests.failAll(error);
    this.ledger.failClaims(error);
    this.waiters.wake();
  }

  protected takeArrived(): JobResult[] {
    const taken = this.ledger.take();
    if (taken.length > 0 && this.waiters.size > 0) this.waiters.wake(); // room under maxQueued
    return taken;
  }
}
