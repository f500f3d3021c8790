/**
 * The caller's record of its jobs and their results: jobs without a result (kept per addJob call,
 * see pending.ts), results that arrived and wait for poll(), and the claims of map, mapResults and
 * submit, which take their own results. A results message is read here, row by row.
 */
import { decodeParsed, NO_FRAMES, readJson, type ControllerToCaller, type OutputRow } from '../protocol/index.js';
import { CallerRows, RowKind } from '../protocol/rows.js';
import { ArrivedResult, MessageTimings } from './job-result.js';
import { claimAnswered, claimFailed, PendingJobs, type Segment } from './pending.js';
import { RemoteError, type JobOutput, type JobResult, type Progress } from './types.js';

type RemoteFailure = { name: string; message: string; stack?: string };

export class JobLedger {
  readonly pending = new PendingJobs();
  /** Results not claimed, arrived and not yet taken. */
  arrived: JobResult[] = [];
  /** Jobs added with addJob (not claimed) whose results have not arrived. */
  unclaimed = 0;
  /** Results of jobs added with addJob, as they arrived (what waitForResult's and results()' progress count). */
  readonly unclaimedTotals = { done: 0, failed: 0 };
  private nextId = 1;
  private readonly totals = { added: 0, done: 0, failed: 0, firstAt: 0, partials: 0 };

  /** Jobs without a result, and results not yet taken: what counts against maxQueued. */
  get held(): number {
    return this.pending.size + this.arrived.length;
  }

  /** Records `count` new jobs of function `fn` under the next ids. */
  add(count: number, fn: string): Segment {
    const now = Date.now();
    const segment = this.pending.add(this.nextId, count, fn, now);
    this.nextId += count;
    this.unclaimed += count;
    this.totals.added += count;
    if (!this.totals.firstAt) this.totals.firstAt = now;
    return segment;
  }

  /** Sessions: jobs an earlier caller added, whose results are owed to this one: recorded as if added here. */
  adopt(first: number, count: number, fn: string, queuedAt: number): void {
    this.pending.add(first, count, fn, queuedAt);
    this.nextId = Math.max(this.nextId, first + count);
    this.unclaimed += count;
    this.totals.added += count;
    if (!this.totals.firstAt) this.totals.firstAt = Date.now();
  }

  /** Sessions: ids below `next` were used by earlier callers. */
  skipTo(next: number): void {
    this.nextId = Math.max(this.nextId, next);
  }

  /** Takes the results that arrived (not those claimed). */
  take(): JobResult[] {
    const taken = this.arrived;
    this.arrived = [];
    return taken;
  }

  get progress(): Progress {
    const elapsed = (Date.now() - (this.totals.firstAt || Date.now())) / 1000;
    const finished = this.totals.done + this.totals.failed;
    const { done, failed, added, partials } = this.totals;
    return { done, failed, total: added, outstanding: added - finished, rate: elapsed > 0 ? finished / elapsed : 0, partials };
  }

  /** Reads a results message; job output goes to `output` first. Returns how many of its results were for jobs still waiting. */
  record(head: Extract<ControllerToCaller, { t: 'results' }>, message: Buffer[], output: (output: JobOutput) => void): number {
    const rows = new CallerRows(message[1]);
    const values = readJson<unknown[]>(message[2], 'result values');
    const out = readJson<OutputRow[]>(message[3], 'job output');
    const bins = message.slice(4);
    const outputs = new Map<number, string>();
    // One worker description per message: every result in it came from that worker.
    const worker = { server: head.server, host: head.host, id: head.w, pid: head.pid };
    for (const [job, stream, text] of out) {
      outputs.set(job, (outputs.get(job) ?? '') + text);
      output({ job, worker: head.w, server: head.server, host: head.host, stream, text });
    }
    let timings: MessageTimings | undefined; // map's values need none
    let answered = 0;
    for (let row = 0; row < rows.count; row++) {
      const id = rows.job(row);
      const segment = this.pending.take(id);
      if (!segment) continue;
      answered++;
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
      const kind = rows.kind(row);
      if (kind === RowKind.partial) this.totals.partials++;
      if (claim?.fold) {
        const index = segment.claimAt + id - segment.first;
        // A partial (mapReduce onServers) is combined; a covered job's value is in a partial already.
        if (succeeded && kind === RowKind.partial) claim.combine?.(value, index);
        else if (succeeded && kind !== RowKind.covered) claim.fold(value, index);
        else if (!succeeded) claimFailed(claim, index, new RemoteError(value as RemoteFailure, id));
        claimAnswered(segment, claim, succeeded);
        continue;
      }
      if (claim?.values) {
        const index = segment.claimAt + id - segment.first;
        if (succeeded) claim.values[index] = value;
        else claimFailed(claim, index, new RemoteError(value as RemoteFailure, id));
        claimAnswered(segment, claim, succeeded);
        continue;
      }
      timings ??= new MessageTimings(rows.count, Date.now());
      const timingsAt = timings.add(segment.queuedAt, rows.dispatchedAt(row), rows.startedAt(row), rows.runMs(row));
      const error = succeeded ? undefined : new RemoteError(value as RemoteFailure, id);
      const result = new ArrivedResult(id, succeeded, succeeded ? value : undefined, error, segment.fn, rows.version(row), rows.attempts(row), worker, timings, timingsAt);
      if (outputs.size > 0) {
        const text = outputs.get(id);
        if (text !== undefined) result.output = text;
      }
      if (claim) {
        claim.results![segment.claimAt + id - segment.first] = result;
        claimAnswered(segment, claim, succeeded);
      } else {
        this.unclaimed--;
        if (succeeded) this.unclaimedTotals.done++;
        else this.unclaimedTotals.failed++;
        this.arrived.push(result);
      }
    }
    return answered;
  }

  /** The controller is gone: every claimed job without a result fails with `error`, so map and submit settle. */
  failClaims(error: Error): void {
    let timings: MessageTimings | undefined; // one for all, like a results message
    const nowhere = { server: '', host: '', id: -1, pid: -1 };
    // Collected first: answering a claim's last job detaches it from its segment.
    const unanswered = [...this.pending.unanswered()].filter(([, segment]) => segment.claim);
    for (const [id, segment] of unanswered) {
      const claim = segment.claim!;
      const index = segment.claimAt + id - segment.first;
      if (claim.results) {
        timings ??= new MessageTimings(this.pending.size, Date.now());
        claim.results[index] = new ArrivedResult(id, false, undefined, error, segment.fn, 0, 0, nowhere, timings, timings.add(segment.queuedAt, 0, 0, 0));
      } else claimFailed(claim, index, error);
      segment.open--;
      claimAnswered(segment, claim, false);
    }
  }
}
