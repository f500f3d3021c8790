/**
 * The caller's side: what a notebook cell or script holds. It never waits on the controller child:
 * jobs are encoded here (so bad arguments throw at once) and handed over in coalesced batches
 * (job-outbox.ts), results accumulate here as they arrive (job-ledger.ts), so poll() is instant.
 * Made by spawnScatterGather (spawn.ts). This file is the public API; the machinery under it, and
 * its wiring, is PoolCore's (pool-core.ts).
 */
import { putMessage } from './shared-values.js';
import { joinParts, scatterMessage } from './scatter-values.js';
import type { Command, Status } from '../protocol/index.js';
import { parseServerUrl } from '../protocol/server-url.js';
import { runSpecOf } from './job-options.js';
import type { SyncedModule } from './definition-shipping.js';
import { encodeItems, jobArguments } from './job-encoding.js';
import { sessionName } from './session-link.js';
import { SessionDetachedError, type SessionDetached, type SessionInfo } from './session-types.js';
import { claim } from './claims.js';
import { inBatches, isItemStream, overBatches, type ItemSource } from './item-stream.js';
import { resultStream, type ResultStream } from './results-iteration.js';
import { clusterOf, type AdaptRange, type Cluster, type ScaleRequest } from './cluster-launch.js';
import { reduceClaim, type Segment } from './pending.js';
import { PoolCore } from './pool-core.js';
import { reduceOnServers } from './server-reduce.js';
import { QueueFullError, type DefineOptions, type JobItem, type JobOptions, type JobResult, type MapReduceOptions, type Progress, type WaitOptions } from './types.js';

export class ScatterGather extends PoolCore {
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
   * failure earliest in input order, a job's or the reducer's. With `onServers`, each worker folds
   * the values of its jobs first and the caller combines their partials (see MapReduceOptions).
   */
  async mapReduce<A, V = unknown>(name: string, items: JobItem[] | ItemSource, reducer: (accumulator: A, value: V, index: number) => A, initial: A, options?: MapReduceOptions<A>): Promise<A> {
    const room = (n: number) => this.waitForRoom(Math.min(n, this.maxQueued));
    if (options?.onServers) {
      const pool = { claiming: this.claiming, define: this.define.bind(this), push: this.push.bind(this), drop: this.drop.bind(this), room };
      return reduceOnServers(pool, name, items, reducer, initial, options);
    }
    // One call per batch (an array is one), each folding into the one accumulator with its index among all the items.
    let accumulator = initial;
    await inBatches(items, room, async (batch, offset) => {
      const into = (_: null, value: V, index: number) => {
        accumulator = reducer(accumulator, value, offset + index);
        return null;
      };
      await claim<null>(this.claiming, 'mapReduce', name, batch, options, (resolve, reject) => reduceClaim(batch.length, into, null, resolve, reject));
      return [];
    });
    return accumulator;
  }

  /**
   * Runs one job whose function yields parts (an async generator) and gives them as they come;
   * the worker runs at most the stream window (STREAM_WINDOW parts, STREAM_WINDOW_BYTES) ahead of
   * what you have taken. Stopping early ends the generator at its next yield and frees the worker.
   * Its failure is thrown after the parts before it.
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

  /**
   * Results in completion order, until nothing added with addJob is outstanding (or `signal` aborts
   * a wait for them); `.reduce(reducer, initial)` folds them as they come instead.
   */
  results(options: { signal?: AbortSignal } = {}): ResultStream {
    const { ledger, waiters, link } = this;
    const settled = link && ((pending: number) => link.settle(pending)); // a session: a result is taken as the loop comes back for the next
    return resultStream({ ledger, waiters, take: () => this.takeArrived(), settled, drained: () => this.drained(), progress: () => this.display.iteration(), signal: options.signal });
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

  /**
   * Re-splits what is scattered as `name` over the workers up now (servers that joined since hold
   * no part): gathers it and scatters it again. Run it between jobs that use it. Resolves with its new version.
   */
  async rebalance(name: string): Promise<number> {
    return this.scatter(name, await this.gather(name));
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
}

function idsOf(segment: Segment): number[] {
  const ids = new Array<number>(segment.count);
  for (let i = 0; i < segment.count; i++) ids[i] = segment.first + i;
  return ids;
}
