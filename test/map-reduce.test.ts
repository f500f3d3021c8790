/**
 * sg.mapReduce: values folded as they arrive, none kept, so a run whose results would not fit in
 * memory together still reduces; failures (a job's, the reducer's) reject as map's do.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';

let sg: ScatterGather;
before(async () => {
  sg = await spawnScatterGather([], { workers: 2, echo: false, progress: false });
  await sg.define('square', (x: number) => x * x);
  await sg.define('blob', (i: number) => String.fromCharCode(97 + (i % 26)).repeat(100_000));
  await sg.define('fragile', (x: number) => {
    if (x === 7 || x === 900) throw new RangeError(`no ${x}`);
    return x;
  });
});
after(() => sg.close());

const items = (n: number) => Array.from({ length: n }, (_, i) => [[i]] as [number[]]);

test('folds every value into the accumulator', async () => {
  const n = 100_000;
  const sum = await sg.mapReduce<number, number>('square', items(n), (total, value) => total + value, 0);
  assert.equal(sum, ((n - 1) * n * (2 * n - 1)) / 6);
  assert.equal(await sg.mapReduce('square', [], (total: number) => total + 1, 42), 42, 'no items: the initial value');
});

test('keeps no result: 2 GB of results reduce in a process that never holds more than a few hundred MB of them', async () => {
  const n = 20_000; // 20,000 strings of 100,000 characters: 2 GB as UTF-16
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5);
  const before = process.memoryUsage().heapUsed;
  const counts = await sg.mapReduce<Record<string, number>, string>(
    'blob',
    items(n),
    (seen, value) => {
      seen[value[0]!] = (seen[value[0]!] ?? 0) + value.length;
      return seen;
    },
    {},
  );
  clearInterval(sampler);
  assert.equal(
    Object.values(counts).reduce((a, b) => a + b, 0),
    n * 100_000,
  );
  const grew = (peak - before) / 1048576;
  assert.ok(grew < 600, `the heap grew by ${grew.toFixed(0)} MB at most while 2,000 MB of results went through`);
});

test("rejects with the failure earliest in input order, once all are in; a reducer's throw is a failure too", async () => {
  await assert.rejects(
    sg.mapReduce<number, number>('fragile', items(1000), (a, v) => a + v, 0),
    (error: Error) => error.name === 'RangeError' && error.message === 'no 7',
  );
  await assert.rejects(
    sg.mapReduce<number, number>(
      'square',
      items(50),
      (a, v, index) => {
        if (index === 30) throw new TypeError('reducer gave up');
        return a + v;
      },
      0,
    ),
    /reducer gave up/,
  );
  assert.equal(sg.outstanding, 0);
});

test('map and mapResults take items from an async iterable, read only as room comes, results in input order', async () => {
  const small = await spawnScatterGather([], { workers: 2, echo: false, progress: false, maxQueued: 1500 });
  try {
    await small.define('square', (x: number) => x * x);
    let pulled = 0;
    let furthestAhead = 0;
    async function* source(n: number) {
      for (let i = 0; i < n; i++) {
        pulled++;
        const { done, failed } = small.progress;
        furthestAhead = Math.max(furthestAhead, pulled - done - failed);
        yield [[i]] as [number[]];
      }
    }
    const values = await small.map<number>('square', source(6000));
    assert.deepEqual(
      values,
      Array.from({ length: 6000 }, (_, i) => i * i),
    );
    assert.ok(furthestAhead <= 1500 + 1024, `the source was read at most maxQueued + one batch ahead of the results (${furthestAhead})`);
    const pairs: Array<[number[]]> = [[[3]], [[4]]];
    const results = await small.mapResults('square', pairs[Symbol.iterator]());
    assert.deepEqual(
      results.map((r) => r.value),
      [9, 16],
    );
  } finally {
    await small.close();
  }
});

test('items from an async generator: folded as they come, each index once, a failure earliest in input order', async () => {
  const n = 5_000; // several batches of 1,024
  let read = 0;
  async function* numbers(count: number) {
    for (let i = 0; i < count; i++, read++) yield [[i]] as [number[]];
  }
  const seen = new Set<number>();
  const sum = await sg.mapReduce<number, number>(
    'square',
    numbers(n),
    (total, value, index) => {
      assert.equal(value, index * index, "the reducer gets each value's index among all the items");
      seen.add(index);
      return total + value;
    },
    0,
  );
  assert.equal(sum, ((n - 1) * n * (2 * n - 1)) / 6);
  assert.equal(seen.size, n);
  assert.equal(read, n);
  await assert.rejects(
    sg.mapReduce('fragile', numbers(2_000), (total: number, value: number) => total + value, 0),
    (error: Error) => error.message.includes('no 7'),
  );
  assert.equal(await sg.mapReduce('square', numbers(0), (total: number) => total + 1, 42), 42, 'no items: the initial value');
});

test('results().reduce folds every addJob result, failures included, once each', async () => {
  sg.addJob('fragile', items(1_000));
  const folded = await sg.results().reduce(
    (seen, result, index) => {
      assert.equal(index, seen.count, 'indexes count up in arrival order');
      if (result.ok) seen.sum += result.value as number;
      else seen.failed.push((result.error as Error).message);
      seen.count++;
      return seen;
    },
    { sum: 0, count: 0, failed: [] as string[] },
  );
  assert.equal(folded.count, 1_000);
  assert.equal(folded.sum, (999 * 1000) / 2 - 7 - 900);
  assert.deepEqual(folded.failed.sort(), ['no 7', 'no 900']);
  assert.deepEqual(await sg.poll(), [], 'nothing left behind for poll()');
});
