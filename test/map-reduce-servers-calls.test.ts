/**
 * sg.mapReduce with `onServers`, call by call: items from iterables folded with a reducer that adds
 * into its accumulator in place, a source that throws part way (the next call must not inherit its
 * jobs), and a partial that must not wait for a long job running after it on its worker.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';

const items = (n: number) => Array.from({ length: n }, (_, i) => [[i]] as [number[]]);
const add = (total: number, value: number) => total + value;
const BINS = 8;
/** Adds `h` into `into`, in place, as docs/api.md shows. */
const addInto = (into: Float64Array, h: Float64Array) => {
  for (let k = 0; k < into.length; k++) into[k]! += h[k]!;
  return into;
};
/** What folding oneHot over items 0 to n - 1 gives: how many i fall in each bin. */
const counts = (n: number) => Float64Array.from({ length: BINS }, (_, k) => Math.floor(n / BINS) + (k < n % BINS ? 1 : 0));

describe('mapReduce onServers, call by call', () => {
  let sg: ScatterGather;

  before(async () => {
    sg = await spawnScatterGather([], { workers: 2, echo: false, progress: false });
    await sg.define('oneHot', (i: number) => {
      const h = new Float64Array(8);
      h[i % 8] = 1;
      return h;
    });
    await sg.define('square', (x: number) => x * x);
    await sg.define('slow', async (x: number) => {
      await new Promise((resolve) => setTimeout(resolve, 3));
      return x;
    });
  });
  after(async () => {
    await sg.close();
  });

  test('items from a generator or an async generator, folded in place with addInto: exact totals', async () => {
    function* sync(n: number) {
      for (let i = 0; i < n; i++) yield [[i]] as [number[]];
    }
    async function* later(n: number) {
      for (let i = 0; i < n; i++) yield [[i]] as [number[]];
    }
    for (const n of [10, 3000]) {
      for (const source of [sync, later]) {
        const total = await sg.mapReduce('oneHot', source(n), addInto, new Float64Array(BINS), { onServers: true, combine: addInto });
        assert.deepEqual(total, counts(n), `${n} items from ${source.name}`);
      }
    }
    assert.deepEqual(await sg.mapReduce('oneHot', items(3000), addInto, new Float64Array(BINS), { onServers: true, combine: addInto }), counts(3000), 'an array of items');
  });

  test("combine's index is that of the partial's job among all the items, across batches", async () => {
    async function* ones(n: number) {
      for (let i = 0; i < n; i++) yield [[1]] as [number[]];
    }
    const n = 3000;
    const seen: number[] = [];
    const total = await sg.mapReduce<number, number>('square', ones(n), add, 0, {
      onServers: true,
      foldFlushMs: 0, // a partial per job or so: some are of later batches
      combine: (sum, partial, index) => {
        seen.push(index);
        return sum + partial;
      },
    });
    assert.equal(total, n);
    assert.ok(seen.every((index) => Number.isInteger(index) && index >= 0 && index < n));
    assert.ok(
      seen.some((index) => index >= 1024),
      `indices of later batches count on from the earlier ones: the largest is ${Math.max(...seen)}`,
    );
  });

  test('a source that throws part way rejects once the jobs it queued are back, and the next call is right', async () => {
    async function* failing() {
      for (let i = 0; i < 1050; i++) yield [[i]] as [number[]];
      throw new Error('the source broke');
    }
    await assert.rejects(sg.mapReduce('slow', failing(), add, 0, { onServers: true }), /the source broke/);
    const outstanding = sg.progress.outstanding;
    assert.equal(
      await sg.mapReduce(
        'square',
        Array.from({ length: 400 }, () => [[1]]),
        add,
        0,
        { onServers: true },
      ),
      400,
      'the next call reuses the fold key, and none of the last call folds into it',
    );
    assert.equal(outstanding, 0, 'the batch it had sent was back when it rejected');
    async function* failingMap() {
      for (let i = 0; i < 1030; i++) yield [[i]] as [number[]];
      throw new Error('the map source broke');
    }
    await assert.rejects(sg.map('slow', failingMap()), /the map source broke/);
    assert.equal(sg.progress.outstanding, 0, "map's batch is back too");
  });
});

describe('mapReduce onServers on one worker', () => {
  let sg: ScatterGather;
  const dir = mkdtempSync(join(tmpdir(), 'tsgather-fold-gate-'));

  before(async () => {
    sg = await spawnScatterGather([], { workers: 1, echo: false, progress: false });
    await sg.define('square', (x: number) => x * x);
    // Holds until the file exists: a long async job that ends when the test says so.
    await sg.define('gated', async (path: string) => {
      const fs = await import('node:fs');
      while (!fs.existsSync(path)) await new Promise((resolve) => setTimeout(resolve, 10));
      return 'released';
    });
    await sg.define('parts', async function* () {
      for (let i = 0; i < 100_000; i++) yield i;
    });
  });
  after(async () => {
    await sg.close();
  });

  test('a partial does not wait for a long async job queued after its call', async () => {
    const gate = join(dir, 'after-fold');
    const queued = sg.progress.total;
    const folded = sg.mapReduce('square', items(5), add, 0, { onServers: true, foldFlushMs: 60_000 });
    assert.ok(await until(() => sg.progress.total === queued + 5, 5000), "the fold's jobs are queued first"); // it defines and pushes before
    sg.addJob('gated', [[[gate]]]);
    const outcome = await Promise.race([folded, sleep(2000, 'still waiting')]);
    writeFileSync(gate, '');
    assert.equal(outcome, 30, 'the fold resolved while the long job held its worker');
    const [result] = await sg.waitForResult({ all: true });
    assert.equal(result?.value, 'released');
  });

  test('a partial does not wait for a stream queued after its call that nobody reads', async () => {
    const queued = sg.progress.total;
    const folded = sg.mapReduce('square', items(5), add, 0, { onServers: true, foldFlushMs: 60_000 });
    assert.ok(await until(() => sg.progress.total === queued + 5, 5000), "the fold's jobs are queued first");
    const parts = sg.stream<number>('parts');
    assert.deepEqual(await parts.next(), { value: 0, done: false }); // then read no more: its worker waits for credit
    const outcome = await Promise.race([folded, sleep(2000, 'still waiting')]);
    await parts.return(undefined);
    assert.equal(outcome, 30, 'the fold resolved while the stream held its worker');
  });
});

/** Checks `condition` every 10 ms until it holds (true) or `ms` have passed (false). */
async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}
