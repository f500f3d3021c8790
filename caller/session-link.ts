/**
 * A ScatterGather's side of a named session: it seeds the caller's ledger with what earlier callers
 * left (the jobs owed to it, the versions of definitions) and tells the controller which results
 * messages it has taken in full ('taken'), so that the controller keeps, for a later caller, only
 * what this one has not taken.
 *
 * A result counts as taken once poll() or waitForResult() has returned it, once a results() loop
 * has come back for the next one (or stopped), and once it reaches a map, mapResults or submit.
 */
import { fromCaller, type SessionAttached, type TakenAck } from '../protocol/messages.js';
import type { Outbox } from '../protocol/transport.js';
import type { JobLedger } from './job-ledger.js';
import type { SessionProcess } from './session-process.js';
import type { SessionInfo } from './session-types.js';

/** What of its ScatterGather the link works with. */
interface SessionBinding {
  ledger: JobLedger;
  outbox: Outbox;
  /** Jobs added and not yet handed to the controller. */
  unsent(): number;
}

/** The name of `link`'s session; a TypeError without one (detach() of a pool that is not a named session's). */
export function sessionName(link: SessionLink | undefined): string {
  if (!link) throw new TypeError("detach() is for named sessions: spawnScatterGather({ session: 'name' })");
  return link.info.name;
}

export class SessionLink {
  private binding?: SessionBinding;
  /** Results put up for poll() so far (the ledger counts them), as of the last message. */
  private putUp = 0;
  /** Results messages that put results up for poll(), in arrival order, with those results' ids. */
  private arrivals: Array<[seq: number, ids: number[]]> = [];
  private first = 0;
  /** Of the first arrival's results, those taken (and acknowledged one by one). */
  private consumed = 0;
  /** Results put up for poll() over all arrivals, and those acknowledged. */
  private added = 0;
  private acknowledged = 0;
  /** To tell the controller: messages taken in full, and results taken from messages not yet taken in full. */
  private acks: TakenAck = { seqs: [], ids: [] };
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
    const arrived = this.binding!.ledger.arrived; // this message's are its last `added`
    this.arrivals.push([seq, arrived.slice(arrived.length - added).map((result) => result.id)]);
    this.added += added;
  }

  /**
   * Acknowledges what has been taken. Results not taken (in the ledger, and `pending` more of a
   * results() batch not yet consumed) are always the latest to have arrived: every one before
   * them is taken.
   */
  settle(pending = 0): void {
    let taken = this.added - this.binding!.ledger.arrived.length - pending - this.acknowledged;
    while (taken > 0 && this.first < this.arrivals.length) {
      const [seq, ids] = this.arrivals[this.first]!;
      const step = Math.min(taken, ids.length - this.consumed);
      this.consumed += step;
      this.acknowledged += step;
      taken -= step;
      if (this.consumed < ids.length) {
        for (let i = this.consumed - step; i < this.consumed; i++) this.acks.ids.push(ids[i]!);
        this.schedule();
      } else {
        this.ack(seq); // taken in full: results acknowledged one by one before are covered too
        this.first++;
        this.consumed = 0;
      }
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
    this.acks.seqs.push(seq);
    this.schedule();
  }

  private schedule(): void {
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(() => this.flushAcks());
  }

  flushAcks(): void {
    this.ackScheduled = false;
    if ((this.acks.seqs.length === 0 && this.acks.ids.length === 0) || this.ended || !this.binding) return;
    this.binding.outbox.post(fromCaller({ t: 'taken' }, JSON.stringify(this.acks)));
    this.acks = { seqs: [], ids: [] };
  }
}
