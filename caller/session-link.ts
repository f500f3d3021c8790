/**
 * A ScatterGather's side of a named session: it seeds the caller's ledger with what earlier callers
 * left (the jobs owed to it, the versions of definitions) and tells the controller which results
 * messages it has taken in full ('taken'), so that the controller keeps, for a later caller, only
 * what this one has not taken.
 *
 * A result counts as taken once poll(), waitForResult() or a results() loop has handed it over (a
 * results() loop: once its batch is consumed), and once it reaches a map, mapResults or submit.
 */
import { fromCaller, type SessionAttached, type SessionDetached } from '../protocol/messages.js';
import type { Outbox } from '../protocol/transport.js';
import type { JobLedger } from './job-ledger.js';
import type { SessionProcess } from './session-process.js';
import { SessionDetachedError, type SessionInfo } from './session-types.js';

/** What of its ScatterGather the link works with. */
interface SessionBinding {
  ledger: JobLedger;
  outbox: Outbox;
  /** Jobs added and not yet handed to the controller. */
  unsent(): number;
}

/** ScatterGather.detach(): hands over the jobs held (`flush`), asks the controller to let go (`request`), then ends the pool (`end`). */
export async function detachFrom(link: SessionLink | undefined, flush: () => void, request: () => Promise<unknown>, end: (error: Error) => void): Promise<SessionDetached> {
  if (!link) throw new TypeError("detach() is for named sessions: spawnScatterGather({ session: 'name' })");
  flush();
  const summary = (await request()) as SessionDetached;
  end(new SessionDetachedError(link.info.name));
  return summary;
}

export class SessionLink {
  private binding?: SessionBinding;
  /** Results put up for poll() so far (the ledger counts them), as of the last message. */
  private putUp = 0;
  /** Results messages that put results up for poll(), in arrival order: [seq, how many]. */
  private arrivals: Array<[seq: number, count: number]> = [];
  private first = 0;
  /** Results put up for poll() over all arrivals, and those of arrivals acknowledged. */
  private added = 0;
  private acknowledged = 0;
  private acks: number[] = [];
  private ackScheduled = false;
  private ended = false;
  private readonly warnAtExit = () => {
    const lost = this.ended ? 0 : (this.binding?.unsent() ?? 0);
    if (lost > 0) {
      process.stderr.write(
        `tsgather: session '${this.info.name}': ${lost} job(s) added in this process had not been handed to the session and are lost; await sg.detach() before exiting hands them over\n`,
      );
    }
  };

  constructor(
    readonly info: SessionInfo,
    readonly controller: SessionProcess,
    private readonly seed: SessionAttached | undefined,
    private readonly onEnd: () => void,
  ) {}

  /** Called by its ScatterGather as it is made, before any message is read. */
  bind(ledger: JobLedger, versions: Map<string, number>, outbox: Outbox, unsent: () => number): void {
    this.binding = { ledger, outbox, unsent };
    if (this.seed) {
      for (const [name, version] of Object.entries(this.seed.versions)) versions.set(name, version);
      for (const [first, count, fn, queuedAt] of this.seed.owed) ledger.adopt(first, count, fn, queuedAt);
      ledger.skipTo(this.seed.nextId);
    }
    process.on('exit', this.warnAtExit);
  }

  /** The ledger has read results message `seq`: the results it put up for poll() are taken later; the rest (claimed by calls, or duplicates) are taken now. */
  received(seq: number | undefined): void {
    const totals = this.binding!.ledger.unclaimedTotals;
    const added = totals.done + totals.failed - this.putUp;
    this.putUp += added;
    if (seq === undefined) return;
    if (added === 0) return this.ack(seq);
    this.arrivals.push([seq, added]);
    this.added += added;
  }

  /**
   * Acknowledges the messages whose results are all taken. Those that wait for poll() are always
   * the latest to have arrived, so every message before them is taken in full.
   */
  settle(): void {
    const taken = this.added - this.binding!.ledger.arrived.length;
    while (this.first < this.arrivals.length && this.acknowledged + this.arrivals[this.first]![1] <= taken) {
      const [seq, count] = this.arrivals[this.first++]!;
      this.acknowledged += count;
      this.ack(seq);
    }
    if (this.first > 1024 && this.first * 2 > this.arrivals.length) {
      this.arrivals = this.arrivals.slice(this.first);
      this.first = 0;
    }
  }

  /** Its ScatterGather is done with the session (detached, closed, or the controller is gone). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.controller.stop();
    process.off('exit', this.warnAtExit);
    this.onEnd();
  }

  private ack(seq: number): void {
    this.acks.push(seq);
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(() => this.flushAcks());
  }

  flushAcks(): void {
    this.ackScheduled = false;
    if (this.acks.length === 0 || this.ended || !this.binding) return;
    this.binding.outbox.post(fromCaller({ t: 'taken' }, JSON.stringify(this.acks)));
    this.acks = [];
  }
}
