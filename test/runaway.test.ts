/**
 * Jobs that misbehave: loop forever, allocate without bound, grow past the memory ceiling, call
 * process.exit. Each is contained to its own worker, reported with a clear error, and the pool
 * carries on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { alive, nextEvent } from './helpers.js';

const items = (n: number, f: (i: number) => unknown = (i) => i) => Array.from({ length: n }, (_, i) => [[f(i)]] as [unknown[]]);

describe('runaway jobs on a two-worker pool', () => {
  let sg: ScatterGather;

  before(async () => {
    sg = await spawnScatterGather([], { workers: 2, echo: false, workerHeapMb: 64 });
    await sg.define('spin', () => {
      for (;;);
    });
    await sg.define('hang', () => new Promise(() => {}));
    await sg.define('double', (n: number) => n * 2);
    await sg.define('spinAt', (n: number, at: number) => {
      if (n === at) for (;;);
      return n;
    });
    await sg.define('hog', () => {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array(1e6).fill(1));
    });
    await sg.define('exitNow', (code: number) => process.exit(code));
  });
  after(() => sg.close());

  test('a job that loops forever is stopped at its timeout: JobTimeoutError naming the limit, worker reforked, others unaffected', async () => {
    const killed = nextEvent(sg, 'worker-down', (d) => d.cause === 'timeout');
    const successor = killed.then(() => nextEvent(sg, 'worker-up'));
    const others = sg.map<number>('double', items(200));
    const [r] = await sg.mapResults('spin', [[[]]], { timeoutMs: 300 });
    assert.equal(r!.ok, false);
    assert.equal(r!.error!.name, 'JobTimeoutError');
    assert.match(r!.error!.message, /job \d+ \('spin'\) ran past its timeout of 300 ms; worker \d+ \(pid \d+\) on .* was killed and reforked \(attempt 1\)/);
    assert.equal(r!.attempts, 1, 'not retried: timeoutRetries defaults to 0');
    const down = await killed;
    assert.equal(down.job, r!.id);
    assert.equal(alive(down.pid as number), false, 'the spinning worker is gone');
    assert.deepEqual(
      await others,
      Array.from({ length: 200 }, (_, i) => i * 2),
    );
    assert.equal(await sg.submit('double', [21]), 42);
    await successor;
    const status = await sg.status();
    assert.equal(status.workers, 2, 'the pool is back to full size');
    assert.ok((status.timedOut as number) >= 1);
  });

  test('an async job that never settles times out too (submit rejects with the JobTimeoutError)', async () => {
    await assert.rejects(sg.submit('hang', [], undefined, { timeoutMs: 200 }), { name: 'JobTimeoutError', message: /timeout of 200 ms/ });
  });

  test('jobs queued on the same worker behind a timed-out one are rerun uncharged: each gets exactly one result', async () => {
    const results = await sg.mapResults(
      'spinAt',
      items(60, (i) => i).map(([[i]]) => [[i, 17]] as [unknown[]]),
      { timeoutMs: 500 },
    );
    const failed = results.filter((r) => !r.ok);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.id, results[17]!.id);
    assert.equal(failed[0]!.error!.name, 'JobTimeoutError');
    assert.deepEqual(
      results.filter((r) => r.ok).map((r) => r.value),
      Array.from({ length: 60 }, (_, i) => i).filter((i) => i !== 17),
    );
    assert.ok(
      results.filter((r) => r.ok).every((r) => r.attempts === 1),
      'the innocent are not charged an attempt',
    );
  });

  test('a job that allocates without bound hits the heap limit: only its worker dies, reported as WorkerDiedError', async () => {
    const others = sg.map<number>('double', items(100));
    const [r] = await sg.mapResults('hog', [[[]]]);
    assert.equal(r!.ok, false);
    assert.equal(r!.error!.name, 'WorkerDiedError');
    assert.match(r!.error!.message, /(killed by SIG|exited with code).*while running job \d+ \('hog'\)/);
    assert.deepEqual(
      await others,
      Array.from({ length: 100 }, (_, i) => i * 2),
    );
    assert.equal(await sg.submit('double', [4]), 8, 'the pool recovered');
  });

  test('a job that calls process.exit is retried once, then reported; the pool recovers', async () => {
    const [r] = await sg.mapResults('exitNow', [[[5]]]);
    assert.equal(r!.error!.name, 'WorkerDiedError');
    assert.match(r!.error!.message, /exited with code 5/);
    assert.equal(r!.attempts, 2);
    assert.deepEqual(
      await sg.map('double', items(10)),
      Array.from({ length: 10 }, (_, i) => i * 2),
    );
  });
});

describe('timeouts set at spawn, with retries', () => {
  test('the spawn-time timeoutMs applies to every job; timeoutRetries reruns a timed-out job before reporting it', async () => {
    const sg = await spawnScatterGather([], { workers: 1, echo: false, timeoutMs: 250, timeoutRetries: 1 });
    try {
      await sg.define('spin', () => {
        for (;;);
      });
      await sg.define('quick', (n: number) => n + 1);
      const [r] = await sg.mapResults('spin', [[[]]]);
      assert.equal(r!.error!.name, 'JobTimeoutError');
      assert.match(r!.error!.message, /timeout of 250 ms.*\(attempt 2\)/);
      assert.equal(r!.attempts, 2);
      assert.equal(await sg.submit('quick', [1]), 2, 'quick jobs finish well inside the default timeout');
      assert.equal(await sg.submit('quick', [1], undefined, { timeoutMs: 0 }), 2, 'timeoutMs: 0 turns it off for a call');
    } finally {
      await sg.close();
    }
  });
});

describe('memory ceiling', () => {
  test('a worker whose resident memory grows past workerMaxRssMb is recycled between jobs, losing nothing', async () => {
    const sg = await spawnScatterGather([], { workers: 1, echo: false, workerMaxRssMb: 200 });
    try {
      // Keeps 100 MB per call alive in the worker: resident memory grows across jobs, not within one.
      await sg.define('retain', (n: number) => {
        const g = globalThis as { kept?: Buffer[] };
        (g.kept ??= []).push(Buffer.alloc(100 * 1024 * 1024, 1));
        return [n, process.pid];
      });
      await sg.define('pid', (n: number) => [n, process.pid]);
      const recycled = nextEvent(sg, 'worker-down', (d) => d.cause === 'recycle');
      const results = await sg.mapResults('retain', items(3));
      assert.ok(
        results.every((r) => r.ok && r.attempts === 1),
        'every job delivered its result once, none was charged',
      );
      const values = results.map((r) => r.value as [number, number]);
      assert.deepEqual(
        values.map(([n]) => n),
        [0, 1, 2],
      );
      const down = await recycled;
      assert.equal(values[0]![1], down.pid, 'the first two jobs ran on the worker that grew past 200 MB');
      assert.equal(values[1]![1], down.pid);
      assert.notEqual(values[2]![1], down.pid, 'the third ran on the worker forked in its place');
      assert.equal(alive(down.pid as number), false);
      const after = await sg.map<[number, number]>('pid', items(20));
      assert.deepEqual(
        after.map(([n]) => n),
        Array.from({ length: 20 }, (_, i) => i),
      );
      assert.equal((await sg.status()).workers, 1);
    } finally {
      await sg.close();
    }
  });
});
