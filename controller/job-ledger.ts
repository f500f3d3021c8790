/**
 * The jobs in the controller's hands and what came of them: each result checked off and forwarded
 * to the caller with its rows rewritten, duplicates dropped, and the failures the controller
 * decides itself (a lost job, a frame too large, a definition no server took) written as results.
 */
import { RateMeter } from './rate-meter.js';
import { encodeValue, joinJson, readJson, ProtocolError, toCaller, type ControllerToCaller, type LinkMessage, type OutputRow, type ServerInfo } from '../protocol/index.js';
import { CallerRowWriter, isRowKind, RowKind, WorkerRows } from '../protocol/rows.js';
import { takeFromInflight, type Cluster, type WorkerSlot } from './cluster.js';
import { holdFolded, partialGroupEnd, partialJobs, releaseFolded, takeFolded } from './folded-jobs.js';
import { attemptsOf, ChunkIndex, largestFrame, type Chunk, type Run } from './job-chunks.js';
import type { JobFailures } from './recovery.js';
import type { Rejections } from './scheduling.js';

/** Seconds of results status()'s rate is taken over. */
const RATE_WINDOW_SECONDS = 5;

export class JobLedger implements Rejections, JobFailures {
  readonly chunks = new ChunkIndex();
  /** Jobs without a result. */
  outstanding = 0;
  readonly counters = { done: 0, failed: 0, retried: 0, timedOut: 0, duplicates: 0, started: Date.now() };
  /** Results forwarded per second, over the last RATE_WINDOW_SECONDS. */
  private readonly rate = new RateMeter(RATE_WINDOW_SECONDS, this.counters.started);
  /** Puts jobs back in their queue (set by the controller): those of a partial that could not be taken. */
  requeue: (run: Run) => void = () => {};

  constructor(
    private readonly cluster: Cluster,
    private readonly sendToCaller: (message: LinkMessage<ControllerToCaller>) => void,
  ) {}

  add(chunk: Chunk): void {
    this.chunks.add(chunk);
    this.outstanding += chunk.count;
  }

  /**
   * Results from a server in session (`slot` is the worker's), or late ones from a server we gave
   * up on (no slot). A worker answers its jobs in the order it got them, so each result is normally
   * the next job of the first run it holds: no lookup.
   */
  results(info: ServerInfo, slot: WorkerSlot | undefined, w: number, message: Buffer[]): void {
    const input = new WorkerRows(message[1]);
    const out = readJson<OutputRow[]>(message[3], 'job output');
    if (!Array.isArray(out)) throw new ProtocolError('job output must be a list');
    this.checkKinds(input);
    const rows = new CallerRowWriter(input.count);
    const counters = this.counters;
    const now = Date.now();
    for (let index = 0; index < input.count; index++) {
      const kind = input.kind(index);
      if (kind === RowKind.partial || kind === RowKind.covered) {
        // A covered row is only ever read with the partial before it: one alone is stray, and dropped.
        const end = kind === RowKind.partial ? partialGroupEnd(input, index) : index + 1;
        this.partial(input, index, end, slot, rows);
        index = end - 1;
        continue;
      }
      const id = input.job(index);
      const ok = input.ok(index);
      const runMs = input.runMs(index);
      const next = slot?.inflight[0];
      const chunk = next && id === next.chunk.first + next.start ? next.chunk : this.chunks.find(id);
      if (!chunk) {
        counters.duplicates++; // a late duplicate: the job already has its result
        continue;
      }
      const job = id - chunk.first;
      // For the usual result this takes the first run's first job: found at once, no search. A job
      // folded before (its reducer threw, say) is taken from the folded ones.
      const run = slot && (takeFromInflight(slot, chunk, job) ?? takeFolded(slot, chunk, job));
      const dispatchedAt = run?.dispatchedAt ?? now;
      if (chunk.done[job]) {
        counters.duplicates++;
        continue;
      }
      const stats = chunk.stats;
      stats.avgRunMs = stats.avgRunMs === undefined ? runMs : stats.avgRunMs * 0.8 + runMs * 0.2;
      if (kind === RowKind.folded) {
        // Out of its window, still its job until a partial covers it. One from a worker given up on was requeued then.
        if (run) holdFolded(slot!, chunk, job, dispatchedAt);
        continue;
      }
      this.finish(chunk, job);
      if (ok) counters.done++;
      else counters.failed++;
      if (slot) ok ? slot.done++ : slot.failed++;
      rows.forward(input, index, index, attemptsOf(chunk, job) + 1, dispatchedAt);
    }
    if (slot?.isolating && slot.inflightCount === 0) slot.isolating = false;
    this.rate.add(now, rows.count);
    if (rows.count > 0 || out.length > 0) {
      const pid = slot?.pid ?? -1;
      this.sendToCaller(toCaller({ t: 'results', server: info.id, host: info.host, w, pid }, rows.bytes(), ...message.slice(2)));
    }
  }

  /**
   * A partial and its covered rows (`start` to `end - 1`): all its jobs are done, and forwarded, or
   * none is. Those of a partial that cannot be taken whole go back to their queue.
   */
  private partial(input: WorkerRows, start: number, end: number, slot: WorkerSlot | undefined, rows: CallerRowWriter): void {
    const jobs = input.kind(start) === RowKind.partial ? partialJobs(input, start, end, slot, (id) => this.chunks.find(id)) : undefined;
    if (!jobs) {
      // Its jobs still folded on this worker run again (retried); the others had their result already (duplicates).
      let rerun = 0;
      for (const run of slot ? releaseFolded(input, start, end, slot, (id) => this.chunks.find(id)) : []) {
        this.requeue(run);
        rerun += run.end - run.start;
      }
      this.counters.retried += rerun;
      this.counters.duplicates += end - start - rerun;
      return;
    }
    for (let row = start; row < end; row++) {
      const [chunk, job] = jobs[row - start]!;
      const run = takeFolded(slot!, chunk, job);
      this.finish(chunk, job);
      this.counters.done++;
      slot!.done++;
      rows.forward(input, row, row, attemptsOf(chunk, job) + 1, run?.dispatchedAt ?? Date.now());
    }
  }

  /**
   * Refuses a message with a row of no RowKind, or a folded, partial or covered row for a job that
   * is not folded (one held as folded would wait for ever), before any of its rows is taken.
   */
  private checkKinds(input: WorkerRows): void {
    let chunk: Chunk | undefined; // the last row's: a worker's rows are mostly of one chunk
    for (let row = 0; row < input.count; row++) {
      const kind = input.kind(row);
      if (kind === RowKind.result) continue;
      if (!isRowKind(kind)) throw new ProtocolError(`result row ${row} has kind ${kind}, which is no RowKind`);
      const id = input.job(row);
      if (!chunk || id < chunk.first || id >= chunk.first + chunk.count) chunk = this.chunks.find(id);
      if (chunk && !chunk.fold) throw new ProtocolError(`job ${id} is not folded (not a mapReduce onServers), but its row is of kind ${kind}`);
    }
  }

  fail(chunk: Chunk, index: number, dispatchedAt: number, slot: WorkerSlot, name: string, message: string): void {
    this.failAll(placeOf(slot), [[chunk, index]], dispatchedAt, name, message);
  }

  /** Jobs whose placement time ran out with no connected server carrying their labels: they never ran anywhere. */
  unplaceable(jobs: ReadonlyArray<readonly [Chunk, number]>): void {
    const { fn, labels } = jobs[0]![0];
    const servers = [...this.cluster.servers()].map(({ info }) => `${info.id} [${(info.labels ?? []).join(', ')}]`);
    const message =
      `no connected server carries ${labels!.map((label) => `'${label}'`).join(', ')}` +
      `${this.cluster.definitions.get(fn)?.labels ? ` and the labels '${fn}' was defined with` : ''}` +
      ` (${servers.length > 0 ? `connected: ${servers.join('; ')}` : 'no server is connected'}); gave up after placementTimeoutMs`;
    this.failAll(NOWHERE, jobs, 0, 'UnplaceableError', message);
  }

  /** A job with a frame larger than its server takes would cost the link its connection: it fails instead. */
  tooLarge(slot: WorkerSlot, chunk: Chunk, index: number): void {
    this.fail(chunk, index, Date.now(), slot, 'MessageTooLargeError', `job ${chunk.first + index} ('${chunk.fn}') has a ${megabytes(largestFrame(chunk, index))} frame; ${frameLimitOf(slot.server)}`);
  }

  /**
   * Jobs whose function's definition could not be sent to this server, when no other connected
   * server took it (see Cluster.canRun), fail rather than run an older version, or none.
   */
  cannotRun(slot: WorkerSlot, jobs: ReadonlyArray<readonly [Chunk, number]>): void {
    const fn = jobs[0]![0].fn;
    this.failAll(placeOf(slot), jobs, Date.now(), 'MessageTooLargeError', `'${fn}' cannot run there: ${slot.server.unsendable.get(fn)}`);
  }

  /** Results per second over the last few seconds (since the start, when that is shorter). */
  ratePerSec(now: number): number {
    return this.rate.perSecond(now);
  }

  private finish(chunk: Chunk, index: number): void {
    chunk.done[index] = 1;
    this.outstanding--;
    if (--chunk.open === 0) this.chunks.close(chunk);
  }

  /** Fails jobs with one and the same error, in one results message whose rows all point at one value. */
  private failAll(place: FailurePlace, jobs: ReadonlyArray<readonly [Chunk, number]>, dispatchedAt: number, name: string, message: string): void {
    const value = encodeValue({ name, message });
    const rows = new CallerRowWriter(jobs.length);
    const now = Date.now();
    for (const [chunk, index] of jobs) {
      this.finish(chunk, index);
      rows.failed(0, chunk.first + index, now, this.cluster.versionOf(chunk.fn), value.plain, attemptsOf(chunk, index), dispatchedAt);
    }
    this.counters.failed += jobs.length;
    this.sendToCaller(toCaller({ t: 'results', ...place }, rows.bytes(), joinJson([value.text]), '[]'));
  }
}

/** Where failed jobs are reported to have been. */
interface FailurePlace {
  server: string;
  host: string;
  w: number;
  pid: number;
}

/** Jobs that never reached a server. */
const NOWHERE: FailurePlace = { server: '', host: '', w: -1, pid: -1 };

function placeOf(slot: WorkerSlot): FailurePlace {
  return { server: slot.server.info.id, host: slot.server.info.host, w: slot.w, pid: slot.pid };
}

export function megabytes(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

export function frameLimitOf(server: { info: ServerInfo; maxFrame: number }): string {
  return `server ${server.info.id} takes frames of at most ${megabytes(server.maxFrame)} (its --max-message-mb)`;
}
