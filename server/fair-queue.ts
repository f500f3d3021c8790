/**
 * A worker's queue of jobs from several controllers (sessions of a shared server), taken out in
 * proportion to each session's weight by the time its jobs ran: stride scheduling. Each session
 * keeps a pass, its run time so far divided by its weight; the next job comes from the session
 * with the lowest pass. One session alone is a plain FIFO, with no bookkeeping beyond a lookup.
 *
 * Fairness per worker makes it fair per server: every worker of a shared server holds jobs of each
 * session with work queued (each controller fills every worker's window), so each picks alike.
 */
import { Deque } from '../runtime/deque.js';

export interface SessionJob {
  controller: string;
}

interface Session<J> {
  jobs: Deque<J>;
  /** Milliseconds run, divided by the weight. */
  pass: number;
  weight: number;
}

/**
 * A session that comes back from idle starts this far behind the lowest pass at most, so a brief
 * gap (its controller's refill on its way) keeps its place while a long idle spell earns no
 * credit to swamp the others with.
 */
const IDLE_CREDIT_MS = 50;

export class FairQueue<J extends SessionJob> {
  private readonly sessions = new Map<string, Session<J>>();
  /** The only session, while there is one: the common case takes its jobs without a search. */
  private only: Session<J> | undefined;
  private count = 0;
  /** The pass of the job taken last: where a session that had nothing queued rejoins. */
  private clock = 0;

  get length(): number {
    return this.count;
  }

  push(job: J): void {
    const session = this.sessionOf(job.controller);
    if (session.jobs.length === 0) session.pass = Math.max(session.pass, this.clock - IDLE_CREDIT_MS / session.weight);
    session.jobs.push(job);
    this.count++;
  }

  /** The next job: from the one session with work, or from the session with the lowest pass. */
  shift(): J | undefined {
    if (this.count === 0) return undefined;
    let next = this.only;
    if (!next)
      for (const session of this.sessions.values()) {
        if (session.jobs.length > 0 && (!next || session.pass < next.pass)) next = session;
      }
    this.count--;
    this.clock = next!.pass;
    return next!.jobs.shift();
  }

  /** Charges `ms` of run time to a session. */
  charge(controller: string, ms: number): void {
    const session = this.sessions.get(controller);
    if (session) session.pass += ms / session.weight;
  }

  /** A session's weight (default 1): its share of the worker while others have work is weight / sum of weights. */
  setWeight(controller: string, weight: number): void {
    this.sessionOf(controller).weight = weight;
  }

  /** Drops a session's queued jobs and its record (its session on the server ended). */
  forget(controller: string): void {
    const session = this.sessions.get(controller);
    if (!session) return;
    this.count -= session.jobs.length;
    this.sessions.delete(controller);
    this.only = this.sessions.size === 1 ? this.sessions.values().next().value : undefined;
  }

  /** Drops every queued job (the server drains). */
  clear(): void {
    for (const session of this.sessions.values()) {
      this.count -= session.jobs.length;
      session.jobs = new Deque();
    }
  }

  private sessionOf(controller: string): Session<J> {
    let session = this.sessions.get(controller);
    if (!session) {
      this.sessions.set(controller, (session = { jobs: new Deque(64), pass: this.clock, weight: 1 }));
      this.only = this.sessions.size === 1 ? session : undefined;
    }
    return session;
  }
}
