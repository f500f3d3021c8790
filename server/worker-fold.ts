/**
 * A worker's folds (mapReduce with `onServers`): the value of each job tagged with a FoldTag is
 * folded into this worker's accumulator for its (controller, key) instead of being sent, and the
 * job is acknowledged at once with a small `folded` row; the accumulator goes later as one partial
 * result followed by a `covered` row for every other job it holds (see RowKind in protocol/rows.ts).
 * A partial goes once the worker has had no job of its call queued for FOLD_IDLE_MS (the call has
 * ended, most likely), once it is the call's flushMs old, before the worker goes, and before a
 * failure of one of its call's jobs is sent. A timer sends it when due even while a job of another
 * call (or a later one of its own) runs, as long as that job lets the event loop turn (awaits);
 * between jobs that do not, the run loop checks. Its folded acks are in the hold before it, so a
 * flush always sends them first (the controller completes a partial's jobs only once acked).
 */
import { describeError, encodeValue, type EncodedValue } from '../protocol/codec.js';
import type { FoldTag } from '../protocol/messages.js';
import { RowKind } from '../protocol/rows.js';
import type { Definitions } from './definitions.js';
import type { ResultHold } from './result-batch.js';
import type { WorkerShared } from './worker-shared.js';

/** How long a worker waits with no job of a call queued before it sends the call's partial: the end of the call, most likely. */
export const FOLD_IDLE_MS = 20;

/** What a folded or covered row carries as its value: nothing. */
const NOTHING: EncodedValue = { text: 'null', bins: [], plain: true };

interface Partial {
  controller: string;
  accumulator: unknown;
  /** The jobs folded in, in the order they ran. */
  jobs: number[];
  /** When it is due out (performance.now()): its call's flushMs after its first job was folded in. */
  dueAt: number;
  /** When its last job was folded in (performance.now()). */
  lastAt: number;
  /** When its first job started (epoch ms). */
  startedAt: number;
  version: number;
}

/** A call's fold on this worker: every controller names its own keys, so two sessions may share one. */
const foldId = (controller: string, key: string) => `${controller}\u0000${key}`;

export class WorkerFolds {
  /** By controller and key. */
  private readonly partials = new Map<string, Partial>();
  /** Jobs queued or running, by controller and key: a partial whose call has none left here goes soon. */
  private readonly queued = new Map<string, number>();
  /** Armed while partials exist, for the earliest one due (or earlier: it then finds nothing and re-arms). */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly hold: ResultHold,
    private readonly definitions: Definitions,
    /** Where the accumulator's initial value is: pushed as `shared[key]` by its controller. */
    private readonly shared: WorkerShared,
    /** Checks an encoded partial, or throws (a frame past the links' limit, say). */
    private readonly check: (job: number, encoded: EncodedValue) => EncodedValue,
  ) {}

  /** While the reducer of `key` waits for the modules it imports: a promise to await before folding (it rejects if one failed). */
  ready(controller: string, [key]: FoldTag): Promise<void> | undefined {
    return this.definitions.lookup(controller, key)?.ready;
  }

  /**
   * Folds job `job`'s value in and acknowledges it. A reducer that throws (or a fold that cannot
   * start) fails this job and every job its accumulator held, with that error: nothing is lost silently.
   */
  fold(controller: string, job: number, [key, base, flushMs]: FoldTag, value: unknown, startedAt: number, runMs: number, version: number): void {
    const id = foldId(controller, key);
    this.dequeued(id);
    let partial = this.partials.get(id);
    try {
      const reducer = this.definitions.lookup(controller, key);
      if (!reducer) throw this.definitions.unknownFunction(controller, key);
      if (!partial) {
        const initial = this.shared.value(controller, key);
        if (!initial) throw new Error(`the initial value of fold '${key}' is not on this worker (its call has ended)`);
        // A copy per partial: a reducer that adds into its accumulator in place must not change the initial value.
        partial = { controller, accumulator: structuredClone(initial.value), jobs: [], dueAt: performance.now() + flushMs, lastAt: 0, startedAt, version };
      }
      const next = reducer.fn(partial.accumulator, value, job - base);
      if (next && typeof (next as PromiseLike<unknown>).then === 'function') throw new TypeError('a reducer run on the servers (onServers) must return its accumulator, not a promise');
      partial.accumulator = next;
    } catch (error) {
      this.partials.delete(id);
      this.failAll(controller, [...(partial?.jobs ?? []), job], error, startedAt, runMs, version);
      return;
    }
    if (partial.jobs.length === 0) this.partials.set(id, partial);
    partial.jobs.push(job);
    partial.lastAt = performance.now();
    this.hold.add(controller, job, true, NOTHING, startedAt, runMs, version, RowKind.folded);
    this.arm();
  }

  /** Job of `key` failed: the partial of its call, if any, goes before its failure. */
  failed(controller: string, [key]: FoldTag): void {
    const id = foldId(controller, key);
    this.dequeued(id);
    const partial = this.partials.get(id);
    if (partial) this.send(id, partial);
  }

  /** Sends every partial (the worker goes, or has been idle). */
  flushAll(): void {
    for (const [id, partial] of this.partials) this.send(id, partial);
  }

  /** Sends the partials due by `now`: flushMs old, or of a call with no job queued here for FOLD_IDLE_MS. Whether it sent any. */
  flushDue(now: number): boolean {
    let sent = false;
    for (const [id, partial] of this.partials) {
      if (now >= this.dueAt(id, partial)) {
        this.send(id, partial);
        sent = true;
      }
    }
    return sent;
  }

  /** A controller's session ended: its partials go (its jobs are rerun elsewhere, or nobody waits for them). */
  drop(controller: string): void {
    for (const [id, partial] of this.partials) if (partial.controller === controller) this.partials.delete(id);
    for (const id of this.queued.keys()) if (id.startsWith(foldId(controller, ''))) this.queued.delete(id);
  }

  get size(): number {
    return this.partials.size;
  }

  /** The queue ran dry: no job of any call is queued, so each partial goes FOLD_IDLE_MS after its last fold, unless a job of its call comes first. */
  idle(): void {
    this.queued.clear();
    this.arm();
  }

  /** Jobs came: those of folds are counted as queued until they have run. */
  busy(jobs: ReadonlyArray<{ controller: string; fold: FoldTag | undefined }>): void {
    for (const job of jobs) {
      if (!job.fold) continue;
      const id = foldId(job.controller, job.fold[0]);
      this.queued.set(id, (this.queued.get(id) ?? 0) + 1);
    }
  }

  /** The queue was emptied (its server drains): nothing is queued. */
  cleared(): void {
    this.queued.clear();
  }

  /** When `partial` is due out: flushMs after its first fold, or FOLD_IDLE_MS after its last when no job of its call is queued. */
  private dueAt(id: string, partial: Partial): number {
    return this.queued.has(id) ? partial.dueAt : Math.min(partial.dueAt, partial.lastAt + FOLD_IDLE_MS);
  }

  /** Arms the timer for the earliest partial due, unless it is armed for then or sooner. */
  private arm(): void {
    let next = Number.POSITIVE_INFINITY;
    for (const [id, partial] of this.partials) next = Math.min(next, this.dueAt(id, partial));
    if (next >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(this.due, Math.max(0, next - performance.now()));
  }

  /** The timer: sends what is due, acks and partials, then re-arms for what is left. */
  private readonly due = (): void => {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.flushDue(performance.now())) this.hold.flush();
    this.arm();
  };

  private dequeued(id: string): void {
    const left = (this.queued.get(id) ?? 1) - 1;
    if (left > 0) this.queued.set(id, left);
    else this.queued.delete(id);
  }

  private send(id: string, partial: Partial): void {
    this.partials.delete(id);
    const [first, ...rest] = partial.jobs;
    let encoded: EncodedValue;
    try {
      encoded = this.check(first!, encodeValue(partial.accumulator, 'partial'));
    } catch (error) {
      return this.failAll(partial.controller, partial.jobs, error, partial.startedAt, 0, partial.version);
    }
    this.hold.addGroup(partial.controller, first!, encoded, rest, partial.startedAt, partial.version);
  }

  private failAll(controller: string, jobs: number[], error: unknown, startedAt: number, runMs: number, version: number): void {
    const failure = encodeValue(describeError(error));
    for (const job of jobs) this.hold.add(controller, job, false, failure, startedAt, runMs, version);
  }
}
