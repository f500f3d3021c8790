/**
 * The sessions of a shared server: one per greeted controller, each with its weight (its share of
 * the workers against the others', carried out by every worker's FairQueue) and a record of the
 * time the workers ran its jobs lately, for status and `tsgather server status`; the pool size
 * sessions ask for, and the end of one session that leaves the others untouched.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import { toController, type SessionShare, type ServerToWorker } from '../protocol/index.js';
import type { ControllerLink } from './controller-links.js';

/** A controller cannot make a server fork thousands of processes by asking for them. */
const MAX_WORKERS_PER_CORE = 4;

/** Shares are reckoned over this many one-second buckets. */
const SHARE_WINDOW_S = 5;

interface Usage {
  /** Milliseconds run in each of the last SHARE_WINDOW_S seconds, by second modulo the window. */
  buckets: Float64Array;
  /** The second each bucket holds. */
  seconds: Float64Array;
  busyMs: number;
}

export interface SessionsHost {
  /** Sends `head` to every worker up, on behalf of the controller link `tag`. */
  toEveryWorker(tag: string, head: ServerToWorker): void;
  /** Sends `head` to one worker, on behalf of `tag`. */
  toWorker(w: number, tag: string, head: ServerToWorker): void;
  /** The controllers in session. */
  sessions(): Iterable<ControllerLink>;
  pool(): { size: number; resize(size: number): void };
  log(): Logger;
  options(): { maxWorkers?: number; exclusive?: boolean };
}

export class Sessions {
  private readonly usage = new Map<string, Usage>();

  constructor(private readonly host: SessionsHost) {}

  /** A controller greeted with `weight` (default 1): every worker learns it. */
  opened(link: ControllerLink, weight: unknown): void {
    const asked = typeof weight === 'number' && Number.isFinite(weight) && weight > 0 ? weight : 1;
    if (link.weight === asked) return;
    link.weight = asked;
    this.host.toEveryWorker(link.tag, { t: 'session', weight: asked });
  }

  /**
   * A controller's `?workers=N`: the pool takes that size when no other session is using it; while
   * others are, it may grow for the newcomer but never shrinks under them.
   */
  sizePool(link: ControllerLink, workers: unknown): void {
    const pool = this.host.pool();
    const { maxWorkers, exclusive } = this.host.options();
    if (typeof workers === 'number' && Number.isInteger(workers) && workers > 0) {
      const limit = maxWorkers ?? MAX_WORKERS_PER_CORE * os.availableParallelism();
      if (workers > limit) this.host.log().warn({ controller: link.controller, asked: workers, limit }, 'controller asked for more workers than --max-workers allows');
      const size = Math.min(workers, limit);
      const shared = !exclusive && [...this.host.sessions()].some((other) => other !== link);
      if (size < pool.size && shared) this.host.log().info({ controller: link.controller, asked: size, size: pool.size }, 'shared with other sessions: the pool is not shrunk under them');
      else if (size !== pool.size) pool.resize(size);
    } else if (pool.size === 0) {
      pool.resize(os.availableParallelism());
    }
  }

  /** A session joined others: each hears of it now (as in a pong), so that all share from the start rather than after the next heartbeat. */
  announce(): void {
    for (const link of this.host.sessions()) link.send(toController({ t: 'pong', n: 0, sessions: this.shares(this.host.sessions(), link) }));
  }

  /**
   * A controller's die on a shared server ends its session only: every worker forgets its queued
   * jobs and its definitions, and the other controllers' sessions go on untouched.
   */
  end(link: ControllerLink): void {
    this.host.toEveryWorker(link.tag, { t: 'forget' });
    this.host.log().info({ controller: link.controller }, 'session ended on die; workers kept for the other controllers');
  }

  /** A worker came up: it learns the weights other than 1 of the sessions in session. */
  workerUp(w: number, links: Iterable<ControllerLink>): void {
    for (const link of links) if (link.greeted && link.weight !== undefined && link.weight !== 1) this.host.toWorker(w, link.tag, { t: 'session', weight: link.weight });
  }

  /** A worker's report of the milliseconds it ran each session's jobs. */
  record(ms: ReadonlyArray<readonly [string, number]>, now = Date.now()): void {
    const second = Math.floor(now / 1000);
    for (const [tag, spent] of ms) {
      if (typeof tag !== 'string' || !(spent >= 0)) continue;
      const usage = this.usageOf(tag);
      const slot = second % SHARE_WINDOW_S;
      if (usage.seconds[slot] !== second) {
        usage.seconds[slot] = second;
        usage.buckets[slot] = 0;
      }
      usage.buckets[slot]! += spent;
      usage.busyMs += spent;
    }
  }

  /** Its session ended for good (goodbye, or gone): its record goes. */
  forget(tag: string): void {
    this.usage.delete(tag);
  }

  /** Every session in `links` and its share of the workers' time over the last few seconds; `asking` is marked `you`. */
  shares(links: Iterable<ControllerLink>, asking?: ControllerLink, now = Date.now()): SessionShare[] {
    const second = Math.floor(now / 1000);
    const recent = (usage: Usage | undefined): number => {
      let ms = 0;
      if (usage) for (let i = 0; i < SHARE_WINDOW_S; i++) if (second - usage.seconds[i]! < SHARE_WINDOW_S) ms += usage.buckets[i]!;
      return ms;
    };
    const rows: Array<{ link: ControllerLink; recentMs: number }> = [];
    let total = 0;
    for (const link of links) {
      const recentMs = recent(this.usage.get(link.tag));
      rows.push({ link, recentMs });
      total += recentMs;
    }
    return rows.map(({ link, recentMs }) => ({
      controller: link.controller ?? link.tag,
      weight: link.weight ?? 1,
      share: total > 0 ? Math.round((recentMs / total) * 1000) / 1000 : 0,
      busyMs: Math.round(this.usage.get(link.tag)?.busyMs ?? 0),
      ...(link === asking ? { you: true } : {}),
    }));
  }

  private usageOf(tag: string): Usage {
    let usage = this.usage.get(tag);
    if (!usage) this.usage.set(tag, (usage = { buckets: new Float64Array(SHARE_WINDOW_S), seconds: new Float64Array(SHARE_WINDOW_S).fill(-1), busyMs: 0 }));
    return usage;
  }
}
