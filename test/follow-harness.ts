/**
 * The harness of follow-late-and-refresh.test.ts: one pair of servers for every test (`early`,
 * dialled at start, and `late`, connected later), a fresh pool and gate directory per test, the
 * gate jobs hold at, and a refresh in the middle of a call.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach } from 'node:test';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { startServer, waitUntil, type RunningServer } from './helpers.js';

/** Items below this one run straight through the gate; the others wait for it to open. */
export const OPEN = 2;
/** Logs the run of item `i` (reruns log again), then waits for the gate unless `i < OPEN`. */
async function gateSource(dir: string, i: number): Promise<void> {
  const fs = await import('node:fs');
  fs.appendFileSync(`${dir}/runs`, `${i}\n`);
  if (i < OPEN) return;
  while (!fs.existsSync(`${dir}/open`)) await new Promise((resolve) => setTimeout(resolve, 5));
}
export const gated = { gate: gateSource, OPEN };

export const items = (n: number) => Array.from({ length: n }, (_, i) => [[i]] as [number[]]);
/** Items `[dir, i]` for the gated jobs of this test. */
export const gatedItems = (n: number) => Array.from({ length: n }, (_, i) => [[dir, i]] as [[string, number]]);
export const squares = (n: number) => ((n - 1) * n * (2 * n - 1)) / 6;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsgather-follow-'));
/** The caller's directory: local modules the jobs import. */
export const home = path.join(root, 'home');
fs.mkdirSync(home);
fs.writeFileSync(path.join(home, 'synced.mjs'), 'export const triple = (x) => x * 3;\n');
fs.writeFileSync(path.join(home, 'local.mjs'), 'export const plus = (x) => x + 0.5;\n');
fs.writeFileSync(path.join(home, 'counter.cjs'), 'module.exports = { bump: (x) => x + 1 };\n');

let early: RunningServer;
let late: RunningServer;
export let sg: ScatterGather;
/** This test's gate directory. */
export let dir: string;
let tests = 0;

const runs = (): number[] => {
  const log = path.join(dir, 'runs');
  return fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').map(Number) : [];
};

/** Connects the late server and waits until its workers are up in this pool. */
export async function joinLate(): Promise<void> {
  await sg.connect(late.endpoint);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = await sg.status();
    if (status.servers.some((s) => s.id === 'late' && s.connected && (s.workers?.length ?? 0) === 2)) return;
    if (Date.now() > deadline) throw new Error(`the late server's workers are not up: ${JSON.stringify(status.servers)}`);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the poll's interval, then ask again
  }
}

export const serverPids = async (id: string) => (await sg.status()).servers.find((s) => s.id === id)!.workers!.map((w) => w.pid);

/**
 * Runs `use` (which starts gated jobs), refreshes once a gated job runs, then opens the gate;
 * resolves with what `use` resolves with, after checking that a gated job ran again.
 */
export async function refreshInTheMiddle<T>(use: () => Promise<T>, n: number): Promise<T> {
  const pending = use();
  pending.catch(() => {}); // awaited below; a rejection must not go unhandled meanwhile
  await waitUntil(() => runs().some((i) => i >= OPEN), 15_000, 'a gated job to run');
  const before = await serverPids('early');
  await sg.command('refresh');
  const after = await serverPids('early');
  assert.ok(
    after.every((pid) => !before.includes(pid)),
    'the workers were reforked',
  );
  fs.writeFileSync(path.join(dir, 'open'), '');
  const value = await pending;
  const logged = runs();
  assert.deepEqual(
    [...new Set(logged)].sort((a, b) => a - b),
    Array.from({ length: n }, (_, i) => i),
    'every item ran',
  );
  assert.ok(logged.length > n, `the jobs running at the refresh ran again (${logged.length} runs of ${n} items)`);
  return value;
}

/** Registers the servers' and each test's set-up and tear-down (call once, at the top of the test file). */
export function useServers(): void {
  before(async () => {
    const flags = ['--bind', 'tcp://127.0.0.1:0', '--workers', '2', '--spare-workers', '1', '--log-level', 'error'];
    [early, late] = await Promise.all([startServer([...flags, '--name', 'early']), startServer([...flags, '--name', 'late', '--label', 'late'])]);
  });
  after(async () => {
    await Promise.all([early?.stop(), late?.stop()]);
    fs.rmSync(root, { recursive: true, force: true });
  });
  beforeEach(async () => {
    dir = path.join(root, `gate-${++tests}`);
    fs.mkdirSync(dir);
    // ?workers=2: start-up waits for both of early's workers (without it, for the first only), so
    // that scatter splits over both.
    sg = await spawnScatterGather([`${early.endpoint}?workers=2`], { base: home, echo: false, progress: false });
  });
  afterEach(() => sg.close());
}
