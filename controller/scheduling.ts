/**
 * Scheduling decisions, as plain code over the cluster's state and the queues: which jobs go to
 * which worker, in how large a batch, and which cannot go anywhere. No sockets, timers or clock:
 * the controller sends what nextBatch returns, and Rejections carries out the failures.
 */
import { CONTROLLER_WINDOW_MS, MAX_JOBS_AHEAD } from '../protocol/flow-control.js';
import { Deque } from '../runtime/deque.js';
import { carries, type Cluster, type WorkerSlot } from './cluster.js';
import { jobsWithinFrame, runOf, type Chunk, type FunctionStats, type Run } from './job-chunks.js';

/** How much work, in milliseconds, each worker should have queued ahead of it (why 8: see protocol/flow-control.ts). */
export const TARGET_WINDOW_MS = CONTROLLER_WINDOW_MS;
export const MIN_WINDOW = 2;
/**
 * On a server shared with other sessions, windows are this many times longer: each worker shares
 * its time between sessions by what it holds of each (server/fair-queue.ts), and a session whose
 * jobs there run out before its top-up arrives loses its turn.
 */
export const SHARED_WINDOW_FACTOR = 4;
export const MAX_WINDOW = MAX_JOBS_AHEAD;
/**
 * A batch carries at least this much work (at its function's average run time) even past the
 * worker's share of what waits: a message costs every process it passes tens of microseconds, so
 * tiny jobs spread thin over thousands of workers cost more in messages than they gain in balance.
 * Jobs of this length or longer are unaffected.
 */
export const MIN_BATCH_MS = TARGET_WINDOW_MS / 4;
/** Jobs failed together (their function cannot reach any server) go to the caller this many to a message. */
export const FAILED_PER_MESSAGE = 8192;

/**
 * Jobs the scheduler took out of its queues because the worker at hand cannot run them, and no
 * other could either: whoever answers the caller fails them.
 */
export interface Rejections {
  /** Job `index` of `chunk` has a frame larger than the worker's server takes. */
  tooLarge(slot: WorkerSlot, chunk: Chunk, index: number): void;
  /** Jobs of one function whose definition the worker's server could not take, when no server in session did. */
  cannotRun(slot: WorkerSlot, jobs: ReadonlyArray<readonly [Chunk, number]>): void;
  /** Jobs whose placement time ran out with no connected server carrying their labels. */
  unplaceable(jobs: ReadonlyArray<readonly [Chunk, number]>): void;
}

/** Jobs of one function, and one set of labels, waiting for a worker. */
interface FunctionQueue {
  fn: string;
  labels: string[] | undefined;
  runs: Deque<Run>;
  jobs: number;
}

export class Scheduler {
  /** Jobs waiting, by function name: a worker only takes functions it can run. */
  private readonly queues = new Map<string, FunctionQueue>();
  /** Jobs that were in flight on a worker that died, run one at a time to find the one that kills. */
  private readonly suspects = new Deque<Run>();
  private readonly stats = new Map<string, FunctionStats>();
  /** Workers left to run dry so that a suspect can run alone there (see nextBatch), at most one per suspect. */
  private readonly reserved = new Set<WorkerSlot>();

  constructor(
    private readonly cluster: Cluster,
    private readonly rejections: Rejections,
  ) {}

  /** The shared record of fn's run times; its chunks keep it, so each result updates it without a lookup. */
  statsFor(fn: string): FunctionStats {
    let stats = this.stats.get(fn);
    if (!stats) this.stats.set(fn, (stats = {}));
    return stats;
  }

  /** Queues a new chunk's jobs behind those of its function. */
  enqueue(chunk: Chunk): void {
    const queue = this.queueFor(chunk);
    queue.runs.push(runOf(chunk, 0, chunk.count));
    queue.jobs += chunk.count;
  }

  /** Puts a run back first in its function's queue: it was on its way before anything queued now. */
  requeueFront(run: Run): void {
    const queue = this.queueFor(run.chunk);
    queue.runs.unshift(run);
    queue.jobs += run.end - run.start;
  }

  /** Queues one job under suspicion of killing its worker: it will run alone. */
  suspect(run: Run): void {
    this.suspects.push(run);
  }

  /** Whether any job waits for a worker. */
  get hasWork(): boolean {
    if (this.suspects.length > 0) return true;
    for (const queue of this.queues.values()) if (queue.jobs > 0) return true;
    return false;
  }

  /** Jobs waiting for a worker, suspects included. */
  get waiting(): number {
    let queued = this.suspects.length;
    for (const queue of this.queues.values()) queued += queue.jobs;
    return queued;
  }

  /** How many of fn's jobs a worker holds at most: about TARGET_WINDOW_MS of work at fn's average run time. */
  window(fn: string, shared = false): number {
    const avg = this.stats.get(fn)?.avgRunMs;
    if (avg === undefined) return MIN_WINDOW;
    const ms = shared ? TARGET_WINDOW_MS * SHARED_WINDOW_FACTOR : TARGET_WINDOW_MS;
    return Math.max(MIN_WINDOW, Math.min(MAX_WINDOW, Math.ceil(ms / Math.max(avg, 0.001))));
  }

  /** The fewest of fn's jobs worth a message: MIN_BATCH_MS of work (none for jobs that long or longer). */
  private minBatch(fn: string): number {
    const avg = this.stats.get(fn)?.avgRunMs;
    return avg === undefined ? 0 : Math.floor(MIN_BATCH_MS / Math.max(avg, 0.001));
  }

  /**
   * What goes to this worker now, in one message, or undefined for nothing: a suspect alone (the
   * slot is then isolating), or runs cut to its window, its share of what waits and its server's
   * frame limit. Jobs that cannot go anywhere are taken out and handed to Rejections on the way.
   */
  nextBatch(slot: WorkerSlot): Run[] | undefined {
    if (slot.isolating) return undefined;
    const maxFrame = slot.server.maxFrame;
    if (this.suspects.length === 0) this.reserved.clear();
    else if (slot.inflightCount > 0 && (this.reserved.has(slot) || (this.reserved.size < this.suspects.length && this.anySuspectFor(slot)))) {
      // Suspects run alone, on a worker with nothing aboard, and in a busy cluster no worker ever runs dry:
      // this one takes nothing more until it has, and then takes a suspect.
      this.reserved.add(slot);
      return undefined;
    }
    if (slot.inflightCount === 0 && this.suspects.length > 0) {
      this.reserved.delete(slot);
      const suspect = this.takeSuspect(slot);
      if (suspect && slot.server.unsendable.has(suspect.chunk.fn)) {
        this.rejections.cannotRun(slot, [[suspect.chunk, suspect.start]]);
      } else if (suspect && jobsWithinFrame(suspect.chunk, suspect.start, 1, maxFrame) === 0) {
        this.rejections.tooLarge(slot, suspect.chunk, suspect.start); // it ran on a server that takes larger frames
      } else if (suspect) {
        slot.isolating = true;
        return [suspect];
      }
    }
    const batch: Run[] = [];
    let taken = 0;
    for (const queue of this.queues.values()) {
      const fn = queue.fn;
      if (queue.jobs === 0 || !this.cluster.canRun(slot, fn) || (queue.labels && !carries(slot.server, queue.labels))) continue;
      if (slot.server.unsendable.has(fn)) {
        this.rejectQueued(slot, queue);
        continue;
      }
      const window = this.window(fn, slot.server.shared);
      const held = slot.inflightCount + taken;
      // A busy worker is topped up only once half its window is free: fewer, larger batches both ways.
      if (slot.inflightCount > 0 && window - held < Math.ceil(window / 2)) continue;
      // Beyond its first job, a worker takes no more than its share of what is left: the last jobs then go
      // to whichever worker frees up first rather than wait behind a busy one while another sits idle.
      const least = Math.max(held === 0 ? 1 : 0, this.minBatch(fn));
      let credit = Math.min(window - held, Math.max(least, Math.floor(queue.jobs / Math.max(1, this.cluster.workerCount))));
      while (credit > 0 && queue.runs.length > 0) {
        const run = queue.runs.peek()!;
        const skipped = skipDone(run);
        queue.jobs -= skipped;
        const size = run.end - run.start;
        if (size === 0) {
          queue.runs.shift();
          continue;
        }
        const take = jobsWithinFrame(run.chunk, run.start, Math.min(credit, size), maxFrame);
        if (take === 0) {
          // Its first job alone passes the frame limit: out of the queue, and failed.
          const index = run.start++;
          queue.jobs--;
          this.rejections.tooLarge(slot, run.chunk, index);
          continue;
        }
        if (take === size) batch.push(queue.runs.shift()!);
        else {
          batch.push(runOf(run.chunk, run.start, run.start + take));
          run.start += take;
        }
        queue.jobs -= take;
        credit -= take;
        taken += take;
      }
    }
    return batch.length > 0 ? batch : undefined;
  }

  private queueFor(chunk: Chunk): FunctionQueue {
    let queue = this.queues.get(chunk.queueKey);
    if (!queue) this.queues.set(chunk.queueKey, (queue = { fn: chunk.fn, labels: chunk.labels, runs: new Deque(), jobs: 0 }));
    return queue;
  }

  /** Jobs queued that ask for labels (theirs or their definition's) no server in session carries. */
  get unplaceable(): number {
    let count = 0;
    for (const queue of this.queues.values()) if (queue.jobs > 0 && !this.cluster.placeable(queue.fn, queue.labels)) count += queue.jobs;
    for (const run of this.suspects) if (!this.cluster.placeable(run.chunk.fn, run.chunk.labels)) count++;
    return count;
  }

  /**
   * Fails the queued jobs whose placement time is over while no server in session carries their
   * labels; returns the earliest placement time still ahead (0: none), for the next look.
   */
  expirePlacements(now: number): number {
    let next = 0;
    const later = (placeBy: number) => {
      if (placeBy > now && (next === 0 || placeBy < next)) next = placeBy;
    };
    for (const queue of this.queues.values()) {
      if (queue.jobs === 0 || !queue.labels) continue;
      if (this.cluster.placeable(queue.fn, queue.labels)) {
        for (const run of queue.runs) later(run.chunk.placeBy);
        continue;
      }
      const expired: Array<[Chunk, number]> = [];
      queue.runs.removeWhere((run) => {
        const placeBy = run.chunk.placeBy;
        if (placeBy === 0 || placeBy > now) {
          later(placeBy);
          return false;
        }
        for (let index = run.start; index < run.end; index++) if (!run.chunk.done[index]) expired.push([run.chunk, index]);
        queue.jobs -= run.end - run.start;
        return true;
      });
      for (let i = 0; i < expired.length; i += FAILED_PER_MESSAGE) this.rejections.unplaceable(expired.slice(i, i + FAILED_PER_MESSAGE));
    }
    return next;
  }

  /** Takes out every job of a queue (its function's definition reached no server), rejected FAILED_PER_MESSAGE at a time. */
  private rejectQueued(slot: WorkerSlot, queue: FunctionQueue): void {
    let jobs: Array<[Chunk, number]> = [];
    for (let run = queue.runs.shift(); run; run = queue.runs.shift()) {
      for (let index = run.start; index < run.end; index++) {
        if (run.chunk.done[index]) continue;
        jobs.push([run.chunk, index]);
        if (jobs.length === FAILED_PER_MESSAGE) {
          this.rejections.cannotRun(slot, jobs);
          jobs = [];
        }
      }
    }
    if (jobs.length > 0) this.rejections.cannotRun(slot, jobs);
    queue.jobs = 0;
  }

  /** A worker went: it is no longer kept for a suspect. */
  release(slot: WorkerSlot): void {
    this.reserved.delete(slot);
  }

  /** Whether a suspect waits that this worker may run. */
  private anySuspectFor(slot: WorkerSlot): boolean {
    for (const run of this.suspects) if (!run.chunk.done[run.start] && this.cluster.canRun(slot, run.chunk.fn) && (!run.chunk.labels || carries(slot.server, run.chunk.labels))) return true;
    return false;
  }

  /** The first suspect this worker may run, the others kept in order; done ones are dropped. */
  private takeSuspect(slot: WorkerSlot): Run | undefined {
    for (let n = this.suspects.length; n > 0; n--) {
      const run = this.suspects.shift()!;
      if (run.chunk.done[run.start]) continue;
      if (this.cluster.canRun(slot, run.chunk.fn) && (!run.chunk.labels || carries(slot.server, run.chunk.labels))) return run;
      this.suspects.push(run);
    }
    return undefined;
  }
}

/** Moves a queued run's start past jobs that got their result meanwhile (a late one from a lost server); returns how many. */
function skipDone(run: Run): number {
  const from = run.start;
  while (run.start < run.end && run.chunk.done[run.start]) run.start++;
  return run.start - from;
}
