/**
 * sg.scatter / sg.gather: an array split over the workers up, one contiguous part each as
 * `shared[name]`; jobs change their part in place; gather joins the parts back in order. A refresh
 * keeps the parts (as scattered); a server that joins later holds none until rebalance(); a lost
 * server's parts are named missing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { startServer, type RunningServer } from './helpers.js';

const items = (n: number, tag: string) => Array.from({ length: n }, () => [[tag]] as [string[]]);

/** Doubles this worker's part of `x` once per `run` (a flag on the worker), and says which part it holds. */
// A few milliseconds each, so that a map of 20 spreads over both workers (tiny jobs go many to a batch).
const DOUBLE = `async (run) => {
  await new Promise((resolve) => setTimeout(resolve, 5));
  const info = shared['x#part'];
  if (!info) return null;
  globalThis.doubled ??= new Set();
  if (!globalThis.doubled.has(run)) {
    globalThis.doubled.add(run);
    const part = shared.x;
    for (let i = 0; i < part.length; i++) part[i] *= 2;
  }
  return info;
}`;

/** Crashes the worker holding part 0 of `z`, once (the marker file says it did). */
const CRASH_HOLDER_OF_0 = `async (marker) => {
  const fs = await import('node:fs');
  if (shared['z#part']?.index === 0 && !fs.existsSync(marker)) {
    fs.writeFileSync(marker, '');
    process.exit(1);
  }
  return shared['z#part']?.index;
}`;

/** Runs DOUBLE until every one of `count` parts has been doubled once. */
async function doubleEveryPart(sg: ScatterGather, count: number, run: string): Promise<void> {
  const seen = new Set<number>();
  for (let round = 0; seen.size < count && round < 50; round++) {
    for (const info of (await sg.map('double', items(20, run))) as Array<{ index: number; count: number } | null>) {
      if (!info) continue;
      assert.equal(info.count, count);
      seen.add(info.index);
    }
  }
  assert.equal(seen.size, count, 'every worker ran a job on its part');
}

describe('sg.scatter and sg.gather on the embedded cluster', () => {
  let sg: ScatterGather;
  before(async () => {
    sg = await spawnScatterGather([], { workers: 2, echo: false, progress: false });
    await sg.define('double', DOUBLE);
  });
  after(() => sg.close());

  test('each worker holds one contiguous part; jobs double it in place; gather returns the doubled array in order', async () => {
    const numbers = Array.from({ length: 10_000 }, (_, i) => i);
    await sg.scatter('x', numbers);
    await doubleEveryPart(sg, 2, 'a');
    assert.deepEqual(
      await sg.gather('x'),
      numbers.map((n) => n * 2),
    );
  });

  test('a Float64Array comes back a Float64Array; a refresh keeps the parts, as scattered', async () => {
    const floats = Float64Array.from({ length: 1001 }, (_, i) => i / 4);
    await sg.scatter('x', floats);
    await doubleEveryPart(sg, 2, 'b');
    const doubled = await sg.gather('x');
    assert.ok(doubled instanceof Float64Array);
    assert.deepEqual(
      doubled,
      floats.map((n) => n * 2),
    );

    const before = (await sg.status()).servers[0]!.workers!.map(({ pid }) => pid);
    await sg.command('refresh');
    const after = (await sg.status()).servers[0]!.workers!.map(({ pid }) => pid);
    assert.ok(
      after.every((pid) => !before.includes(pid)),
      'the workers are new',
    );
    // Changes made in place went with the old workers; the new ones hold the parts as scattered.
    assert.deepEqual(await sg.gather('x'), floats);
    await doubleEveryPart(sg, 2, 'c');
    assert.deepEqual(
      await sg.gather('x'),
      floats.map((n) => n * 2),
    );
  });

  test('the part of a worker that crashed goes to the worker that replaces it', async () => {
    const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'scatter-')), 'crashed');
    await sg.define('crashHolderOf0', CRASH_HOLDER_OF_0);
    const numbers = Array.from({ length: 100 }, (_, i) => i);
    await sg.scatter('z', numbers);
    const pids = (await sg.status()).servers[0]!.workers!.map(({ pid }) => pid);
    for (let round = 0; !fs.existsSync(marker) && round < 50; round++)
      await sg.mapResults(
        'crashHolderOf0',
        Array.from({ length: 10 }, () => [[marker]] as [string[]]),
      );
    assert.ok(fs.existsSync(marker), 'the worker holding part 0 crashed');
    const up = Date.now();
    let now = pids;
    while (Date.now() - up < 20_000) {
      now = ((await sg.status()).servers[0]!.workers ?? []).map(({ pid }) => pid);
      if (now.length === 2 && now.some((pid) => !pids.includes(pid))) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(now.filter((pid) => !pids.includes(pid)).length, 1, 'one worker was replaced');
    assert.deepEqual(await sg.gather('z'), numbers);
    await sg.drop('z');
  });

  test('bad input and unknown names are clear errors; drop forgets the parts', async () => {
    await assert.rejects(sg.gather('nothing'), /nothing was scattered as 'nothing'/);
    await assert.rejects(sg.scatter('y', { length: 3 } as never), /scatter\('y'\) needs an Array or a TypedArray/);
    await sg.push('p', 1);
    await assert.rejects(sg.scatter('p', [1, 2]), /'p' is pushed \(sg\.push\)/);
    assert.equal(await sg.drop('x'), true);
    await assert.rejects(sg.gather('x'), /nothing was scattered as 'x'/);
    assert.deepEqual(await sg.map('double', items(4, 'd')), [null, null, null, null]);
  });
});

describe('sg.scatter with servers joining and leaving', () => {
  let first: RunningServer;
  let late: RunningServer;
  before(async () => {
    [first, late] = await Promise.all([
      startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--log-level', 'error']),
      startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--log-level', 'error']),
    ]);
  });
  after(() => Promise.all([first.stop(), late.stop()]));

  test('a server that joins after scatter holds no part until rebalance; a lost server makes gather name its parts missing', async () => {
    const sg = await spawnScatterGather([first.endpoint], { echo: false, progress: false });
    try {
      await sg.define('double', DOUBLE);
      await sg.scatter('x', [1, 2, 3]);
      await sg.connect(late.endpoint);
      const up = Date.now();
      while ((await sg.status()).workers < 2 && Date.now() - up < 10_000) await new Promise((resolve) => setTimeout(resolve, 20));
      const where = await sg.mapResults('double', items(40, 'e'));
      const onLate = where.filter((r) => r.worker.server !== where.find((s) => s.value !== null)?.worker.server);
      assert.ok(onLate.length > 0, 'jobs ran on the late server');
      assert.ok(
        onLate.every((r) => r.value === null),
        'the late server holds no part',
      );
      assert.deepEqual(await sg.gather('x'), [2, 4, 6]);

      // rebalance re-splits it over both servers: each holds one part, and nothing is lost.
      await sg.rebalance('x');
      const spread = (await sg.mapResults('double', items(40, 'f'))).filter((r) => r.value !== null);
      assert.deepEqual(new Set(spread.map((r) => (r.value as { count: number }).count)), new Set([2]));
      assert.equal(new Set(spread.map((r) => r.worker.server)).size, 2, 'both servers hold a part');
      assert.deepEqual(await sg.gather('x'), [4, 8, 12]);

      await first.stop();
      const down = Date.now();
      while ((await sg.status()).workers > 1 && Date.now() - down < 20_000) await new Promise((resolve) => setTimeout(resolve, 20));
      await assert.rejects(sg.gather('x'), /gather\('x'\): part 0 of 2 missing/);
      await assert.rejects(sg.rebalance('x'), /part 0 of 2 missing/, 'rebalance loses nothing: it refuses');
    } finally {
      await sg.close();
    }
  });
});
