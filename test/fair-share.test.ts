/**
 * Fair sharing of a shared server's workers between sessions (controllers): while several have
 * work queued, each gets the workers' time in proportion to its weight, whatever the length of
 * its jobs or the size of its queue; status() and `tsgather server status` show each one's share.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnScatterGather, type JobResult, type ScatterGather, type Status } from '../caller/index.js';
import { startServer, type RunningServer } from './helpers.js';
import { runCli } from './cli-helpers.js';

const SPIN = '(ms) => { const end = performance.now() + ms; while (performance.now() < end); return ms; }';
const spins = (n: number, ms: number) => Array.from({ length: n }, () => [[ms]] as [number[]]);

/**
 * The part of the workers' time that went to `mine` while it ran: over the span from its first
 * job's start to its last one's end, its run time against everyone's.
 */
function shareOf(mine: JobResult[], others: JobResult[]): number {
  const from = Math.min(...mine.map((r) => r.timings.startedAt));
  const to = Math.max(...mine.map((r) => r.timings.startedAt + r.timings.runMs));
  const within = (results: JobResult[]) => results.reduce((ms, { timings: { startedAt, runMs } }) => ms + Math.max(0, Math.min(startedAt + runMs, to) - Math.max(startedAt, from)), 0);
  const own = within(mine);
  return own / (own + within(others));
}

/** b.status() once `holds` is true of it (asked again every 100 ms), or an error after 10 s. */
async function statusWhen(sg: ScatterGather, holds: (status: Status) => boolean): Promise<Status> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const status = await sg.status();
    if (holds(status)) return status;
    if (Date.now() > deadline) assert.fail(`status never came to hold: ${JSON.stringify(status.servers.map((s) => s.sessions))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Takes the results of `sg`'s addJob calls as they come, until stopped. */
function collect(sg: ScatterGather): { results: JobResult[]; stop(): Promise<void> } {
  const results: JobResult[] = [];
  let running = true;
  const loop = (async () => {
    while (running) results.push(...(await sg.waitForResult({ timeout: 50 })));
  })();
  return {
    results,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

describe('a shared server under two sessions with work queued', () => {
  let dir: string;
  let server: RunningServer;
  let pidfile: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsgather-fair-'));
    pidfile = join(dir, 'server.pid');
    server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '2', '--spare-workers', '0', '--pidfile', pidfile, '--log-level', 'error']);
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('equal weights: a session of long jobs gets half the workers, not the most (and 10 jobs are not starved by 200,000)', async () => {
    const a = await spawnScatterGather([server.endpoint], { echo: false, progress: false });
    const b = await spawnScatterGather([server.endpoint], { echo: false, progress: false });
    try {
      await a.define('spin', SPIN);
      await b.define('spin', SPIN);
      const total = 200_000;
      a.addJob('spin', spins(total, 1));
      const aResults = collect(a);
      while (aResults.results.length < 100) await new Promise<void>((resolve) => setImmediate(resolve));
      const bResults = await b.mapResults('spin', spins(60, 20));
      await aResults.stop();
      assert.ok(bResults.every((r) => r.ok));
      const share = shareOf(bResults, aResults.results);
      assert.ok(share > 0.38 && share < 0.66, `the session of 20 ms jobs had ${(share * 100).toFixed(0)}% of the workers while both had work; equal weights give 50%`);
      assert.ok(total - aResults.results.length > 190_000, 'B finished while A had almost all of its 200,000 jobs still to run');
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('weights 3 and 1: the sessions get three quarters and a quarter; status() and server status show the shares', async () => {
    const a = await spawnScatterGather([server.endpoint], { echo: false, progress: false, weight: 3 });
    const b = await spawnScatterGather([server.endpoint], { echo: false, progress: false });
    try {
      await a.define('spin', SPIN);
      await b.define('spin', SPIN);
      a.addJob('spin', spins(100_000, 2));
      const aResults = collect(a);
      while (aResults.results.length < 100) await new Promise<void>((resolve) => setImmediate(resolve));
      const bResults = await b.mapResults('spin', spins(300, 2));
      // The server's shares come with its answers to heartbeats: wait for one that counts both sessions' work.
      const status = await statusWhen(b, (s) => (s.servers[0]?.sessions ?? []).filter((session) => session.share > 0).length === 2);
      await aResults.stop();
      const share = shareOf(bResults, aResults.results);
      assert.ok(share > 0.15 && share < 0.35, `the session of weight 1 had ${(share * 100).toFixed(0)}% of the workers against weight 3; the weights give 25%`);

      const sessions = status.servers[0]!.sessions!;
      assert.equal(sessions.length, 2, 'both sessions are listed');
      const mine = sessions.find((s) => s.you)!;
      const theirs = sessions.find((s) => !s.you)!;
      assert.deepEqual([mine.weight, theirs.weight], [1, 3]);
      assert.ok(mine.share > 0 && mine.share < 0.5 && theirs.share > 0.5, `shares as the server saw them: ${JSON.stringify(sessions)}`);

      const shown = await runCli(['server', 'status', '--pidfile', pidfile]);
      assert.equal(shown.code, 0);
      assert.match(shown.stdout, /sessions: 2/);
      assert.match(shown.stdout, /weight 3 {2}share \d+%/);
      assert.match(shown.stdout, /weight 1 {2}share \d+%/);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
