/**
 * Issue 25: code and data follow the notebook, on real processes, to a remote server that joins
 * late (connected with sg.connect after the feature was set up) and across a refresh in the middle
 * of the feature's use. One pair of servers serves every test: `early`, which each test's pool
 * dials at start, and `late`, which it connects to later (a new session there each time). A
 * refresh in the middle: the jobs hold at a gate (a file) once started, the refresh comes while
 * one runs, then the gate opens; every value must come exactly once, and the run log shows reruns.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { imported, STREAM_WINDOW, type JobPart } from '../caller/index.js';
import { dir, gated, gatedItems, home, items, joinLate, refreshInTheMiddle, serverPids, sg, squares, useServers } from './follow-harness.js';

// Names the defined functions use, given to them with `with`: declared for the type checker only.
declare function gate(dir: string, i: number): Promise<void>;
declare function helper(x: number): number;
declare const SCALE: number;
declare const OFFSET: number;
declare const triple: (x: number) => number;
declare const shared: Record<string, unknown>;

useServers();

describe('closures captured by define', { timeout: 60_000 }, () => {
  test('a late server runs a function with its captured helper, constant and synced module; a redefined helper reaches it as a new version', async () => {
    await sg.sync(['synced.mjs']);
    let helper = (x: number) => x * SCALE;
    const f = (x: number) => helper(x) + triple(x) + OFFSET;
    const capture = () => ({ with: { helper, SCALE: 10, OFFSET: 0.25, triple: imported('./synced.mjs', 'triple') } });
    assert.equal(await sg.define('f', f, capture()), 1);
    await joinLate();
    const [first] = await sg.mapResults('f', [[[2]]], { labels: ['late'] });
    assert.deepEqual([first!.value, first!.version, first!.worker.server], [26.25, 1, 'late']);

    helper = (x: number) => -x;
    assert.equal(await sg.define('f', f, capture()), 2);
    const again = await sg.mapResults('f', items(4), { labels: ['late'] });
    assert.deepEqual(
      again.map((r) => [r.value, r.version, r.worker.server]),
      [0, 1, 2, 3].map((x) => [2 * x + 0.25, 2, 'late']),
    );
    assert.deepEqual(await sg.map('f', [[[1]]]), [2.25], 'the early server has the new version too');
  });

  test('a refresh in the middle of a map: the reforked workers get the function with its captures, every value once', async () => {
    const f = async (d: string, x: number) => {
      await gate(d, x);
      return helper(x) + OFFSET;
    };
    await sg.define('f', f, { with: { ...gated, helper: (x: number) => x * SCALE, SCALE: 3, OFFSET: 1 } });
    const n = 12;
    const values = await refreshInTheMiddle(() => sg.map<number>('f', gatedItems(n)), n);
    assert.deepEqual(
      values,
      Array.from({ length: n }, (_, x) => 3 * x + 1),
    );
  });
});

describe('imports from the caller directory and modules shipped with sync', { timeout: 60_000 }, () => {
  const importAll = async (x: number) => {
    const { triple } = await import('./synced.mjs' as string);
    const { plus } = await import('./local.mjs' as string);
    return plus(triple(x)) + require('./counter.cjs').bump(0);
  };

  test('a late server imports from the caller directory and the synced modules; a file synced again after it joined reaches it', async () => {
    await sg.sync(['synced.mjs']);
    await sg.define('importAll', importAll);
    await joinLate();
    const first = await sg.mapResults('importAll', items(3), { labels: ['late'] });
    assert.deepEqual(
      first.map((r) => [r.value, r.worker.server]),
      [0, 1, 2].map((x) => [3 * x + 1.5, 'late']),
    );
    fs.writeFileSync(path.join(home, 'synced.mjs'), 'export const triple = (x) => x * 30;\n');
    try {
      await sg.sync(['synced.mjs']);
      const [again] = await sg.mapResults('importAll', [[[2]]], { labels: ['late'] });
      assert.deepEqual([again!.value, again!.version, again!.worker.server], [61.5, 2, 'late']);
    } finally {
      fs.writeFileSync(path.join(home, 'synced.mjs'), 'export const triple = (x) => x * 3;\n');
    }
  });

  test('a refresh in the middle of a map: the reforked workers import everything again, every value once', async () => {
    await sg.sync(['synced.mjs']);
    await sg.define(
      'importGated',
      async (d: string, x: number) => {
        await gate(d, x);
        return importAll(x);
      },
      { with: { ...gated, importAll } },
    );
    const n = 10;
    const values = await refreshInTheMiddle(() => sg.map<number>('importGated', gatedItems(n)), n);
    assert.deepEqual(
      values,
      Array.from({ length: n }, (_, x) => 3 * x + 1.5),
    );
  });
});

describe('push, drop, scatter, gather and rebalance', { timeout: 60_000 }, () => {
  const readShared = (x: number) => ({ table: (shared.table as number[] | undefined)?.[x], gone: shared.gone ?? null });

  test('a late server gets what was pushed before it joined, and not what was dropped', async () => {
    await sg.push('table', [10, 20, 30]);
    await sg.push('gone', 'dropped before the late server joined');
    assert.equal(await sg.drop('gone'), true);
    await sg.define('readShared', readShared);
    await joinLate();
    const results = await sg.mapResults('readShared', items(3), { labels: ['late'] });
    assert.deepEqual(
      results.map((r) => [r.value, r.worker.server]),
      [10, 20, 30].map((table) => [{ table, gone: null }, 'late']),
    );
  });

  test('a refresh in the middle of a map that reads a pushed value: the reforked workers read it, every value once', async () => {
    await sg.push(
      'table',
      Float64Array.from({ length: 16 }, (_, i) => i * 1.5),
    );
    await sg.define(
      'readGated',
      async (d: string, x: number) => {
        await gate(d, x);
        return readShared(x);
      },
      { with: { ...gated, readShared } },
    );
    const n = 16;
    const values = await refreshInTheMiddle(() => sg.map<{ table: number }>('readGated', gatedItems(n)), n);
    assert.deepEqual(
      values.map((v) => v.table),
      Array.from({ length: n }, (_, i) => i * 1.5),
    );
  });

  test('scattered over the early server, rebalanced over the late one too, then a refresh in the middle of a map: every part kept, gathered as scattered', async () => {
    const data = Int32Array.from({ length: 1001 }, (_, i) => i * 7);
    await sg.scatter('x', data);
    await joinLate();
    await sg.rebalance('x');
    await sg.define(
      'partGated',
      async (d: string, x: number) => {
        await gate(d, x);
        const part = shared['x#part'] as { index: number; count: number } | undefined;
        return part ? part.count : 0;
      },
      { with: gated },
    );
    const n = 24;
    const counts = await refreshInTheMiddle(() => sg.mapResults('partGated', gatedItems(n)), n);
    assert.ok(
      counts.every((r) => r.value === 4),
      `every worker, refreshed ones on both servers, holds one of 4 parts: ${counts.map((r) => r.value)}`,
    );
    assert.deepEqual(await sg.gather('x'), data);
  });
});

describe('streams', { timeout: 60_000 }, () => {
  /** Parts 0 … n-1, each with the pid of its worker; logs each run. */
  const COUNTED = `async function* (dir, n) {
    require('node:fs').appendFileSync(dir + '/streams', 'x');
    for (let i = 0; i < n; i++) yield { i, pid: process.pid };
  }`;
  /** Parts 0 … k-1, then (once the gate opens) k … n-1; logs each run. */
  const GATED = `async function* (dir, k, n) {
    const fs = require('node:fs');
    fs.appendFileSync(dir + '/streams', 'x');
    for (let i = 0; i < n; i++) {
      if (i === k) while (!fs.existsSync(dir + '/open')) await new Promise((resolve) => setTimeout(resolve, 5));
      yield i;
    }
  }`;
  const streamRuns = () => fs.readFileSync(path.join(dir, 'streams'), 'utf8').length;

  test('a stream runs on a late server: every part once, in order', async () => {
    await sg.define('counted', COUNTED);
    await joinLate();
    const pids = await serverPids('late');
    const n = 2 * STREAM_WINDOW + 5;
    const parts: number[] = [];
    for await (const part of sg.stream<{ i: number; pid: number }>('counted', [dir, n], undefined, { labels: ['late'] })) {
      assert.ok(pids.includes(part.pid), 'on a worker of the late server');
      parts.push(part.i);
    }
    assert.deepEqual(
      parts,
      Array.from({ length: n }, (_, i) => i),
    );
  });

  test('a refresh while the reader is mid-way: the rerun skips the parts already given; every part once, in order', async () => {
    await sg.define('counted', COUNTED);
    const n = 3 * STREAM_WINDOW; // the generator waits for credit: it is still running at the refresh
    const parts: number[] = [];
    for await (const part of sg.stream<{ i: number }>('counted', [dir, n])) {
      parts.push(part.i);
      if (part.i === 100) await sg.command('refresh');
    }
    assert.equal(streamRuns(), 2, 'the refresh stopped the generator, and it ran again');
    assert.deepEqual(
      parts,
      Array.from({ length: n }, (_, i) => i),
    );
  });

  test("addJob with { stream: true } on a late server: every job's parts as 'part' events, in order", async () => {
    await sg.define('counted', COUNTED);
    const parts = new Map<number, number[]>();
    const onPart = ({ job, n, value }: JobPart) => {
      const seen = parts.get(job) ?? [];
      assert.equal(n, seen.length, 'in order');
      parts.set(job, [...seen, (value as { i: number }).i]);
    };
    sg.on('part', onPart);
    try {
      await joinLate();
      const sizes = [3, 2 * STREAM_WINDOW];
      const ids = sg.addJob('counted', sizes.map((n) => [[dir, n]]) as [[string, number]][], { stream: true, labels: ['late'] });
      const results = (await sg.waitForResult({ all: true })).sort((a, b) => a.id - b.id);
      assert.deepEqual(
        results.map((r) => [r.id, r.value, r.worker.server]),
        ids.map((id, k) => [id, sizes[k], 'late']),
      );
      assert.deepEqual(
        ids.map((id) => parts.get(id)),
        sizes.map((n) => Array.from({ length: n }, (_, i) => i)),
      );
    } finally {
      sg.off('part', onPart);
    }
  });

  test("addJob with { stream: true } and a refresh mid-way: the rerun's parts come again from 0, numbered, then the rest", async () => {
    await sg.define('gatedParts', GATED);
    const k = 5;
    const n = 12;
    const seen: number[] = [];
    let firstParts: () => void = () => {};
    const started = new Promise<void>((resolve) => (firstParts = resolve));
    const onPart = ({ n: at, value }: JobPart) => {
      assert.equal(value, at, 'a part is its number');
      seen.push(at);
      if (seen.length === k) firstParts();
    };
    sg.on('part', onPart);
    try {
      // One job: two might go to one worker, the second waiting behind the first at its gate.
      const [id] = sg.addJob('gatedParts', [[[dir, k, n]]], { stream: true });
      await started; // the job gave its first k parts and waits at the gate
      await sg.command('refresh');
      fs.writeFileSync(path.join(dir, 'open'), '');
      // (attempts stays 1: a rerun after a refresh is not charged)
      assert.deepEqual(
        (await sg.waitForResult({ all: true })).map((r) => [r.id, r.value]),
        [[id, n]],
      );
      const upTo = (m: number) => Array.from({ length: m }, (_, i) => i);
      assert.deepEqual(seen, [...upTo(k), ...upTo(n)]);
      assert.equal(streamRuns(), 2, 'the job ran twice');
    } finally {
      sg.off('part', onPart);
    }
  });
});

describe('mapReduce and results().reduce', { timeout: 60_000 }, () => {
  const squareGated = async (d: string, x: number) => {
    await gate(d, x);
    return x * x;
  };
  const squarePid = (x: number) => ({ square: x * x, pid: process.pid });

  test('mapReduce started before the late server joins, its jobs asking for it: the exact total, all from its workers', async () => {
    await sg.define('squarePid', squarePid);
    const n = 200;
    const folding = sg.mapReduce<{ total: number; pids: Set<number> }, { square: number; pid: number }>(
      'squarePid',
      items(n),
      (acc, value) => ({ total: acc.total + value.square, pids: acc.pids.add(value.pid) }),
      { total: 0, pids: new Set<number>() },
      { labels: ['late'] },
    );
    await joinLate();
    const pids = await serverPids('late');
    const { total, pids: used } = await folding;
    assert.equal(total, squares(n));
    assert.ok(
      [...used].every((pid) => pids.includes(pid)),
      'every value came from a worker of the late server',
    );
  });

  test('mapReduce with a refresh in the middle: the exact total', async () => {
    await sg.define('squareGated', squareGated, { with: gated });
    const n = 40;
    const total = await refreshInTheMiddle(() => sg.mapReduce<number, number>('squareGated', gatedItems(n), (sum, value) => sum + value, 0), n);
    assert.equal(total, squares(n));
  });

  test('results().reduce with a refresh in the middle, then jobs waiting for a late server: every result folded once', async () => {
    await sg.define('squareGated', squareGated, { with: gated });
    await sg.define('squarePid', squarePid);
    const n = 30;
    const ids = sg.addJob('squareGated', gatedItems(n));
    const fold = (acc: { sum: number; ids: number[] }, result: { id: number; ok: boolean; value?: unknown }) => {
      assert.ok(result.ok);
      const value = result.value as number | { square: number };
      return { sum: acc.sum + (typeof value === 'number' ? value : value.square), ids: [...acc.ids, result.id] };
    };
    const folded = await refreshInTheMiddle(() => sg.results().reduce(fold, { sum: 0, ids: [] as number[] }), n);
    assert.equal(folded.sum, squares(n));
    assert.deepEqual(
      folded.ids.sort((a, b) => a - b),
      ids,
    );

    const lateIds = sg.addJob('squarePid', items(n), { labels: ['late'] });
    const folding = sg.results().reduce(fold, { sum: 0, ids: [] as number[] });
    await joinLate();
    const onLate = await folding;
    assert.equal(onLate.sum, squares(n));
    assert.deepEqual(
      onLate.ids.sort((a, b) => a - b),
      lateIds,
    );
  });
});
