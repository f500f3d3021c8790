/** Workers that die mid-job: reforked by their server, the job retried, then reported with its cause. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnScatterGather, type ScatterGather, type JobOutput } from '../caller/index.js';
import { alive, nextEvent } from './helpers.js';

describe('worker deaths', () => {
  let sg: ScatterGather;

  before(async () => {
    sg = await spawnScatterGather([], { workers: 2, echo: false, workerHeapMb: 48 });
    await sg.define('exitNow', (code: number) => process.exit(code));
    await sg.define('double', (n: number) => n * 2);
    await sg.define('hog', () => {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array(1e6).fill(1));
    });
    await sg.define('announceThenSleep', async (ms: number) => {
      console.log(`running in ${process.pid}`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      return process.pid;
    });
  });
  after(() => sg.close());

  test('a worker killed with SIGKILL mid-job is reforked and its job rerun on another worker', async () => {
    const started = new Promise<number>((resolve) => {
      const listener = (o: JobOutput) => {
        const match = /running in (\d+)/.exec(o.text);
        if (match) {
          sg.off('output', listener);
          resolve(Number(match[1]));
        }
      };
      sg.on('output', listener);
    });
    const result = sg.mapResults('announceThenSleep', [[[300]]]);
    const victim = await started;
    const replacement = nextEvent(sg, 'worker-up');
    process.kill(victim, 'SIGKILL');
    const [r] = await result;
    assert.equal(r!.ok, true, String(r!.error));
    assert.equal(r!.attempts, 2);
    assert.notEqual(r!.value, victim, 'rerun in another process');
    assert.equal(alive(victim), false);
    assert.notEqual((await replacement).pid, victim);
    const status = await sg.status();
    assert.equal(status.workers, 2, 'the killed worker was replaced');
  });

  test('a job that calls process.exit is retried once, then reported failed with the cause; other jobs are unaffected', async () => {
    const doubled = sg.map<number>(
      'double',
      Array.from({ length: 50 }, (_, i) => [[i]] as [number[]]),
    );
    const [dead] = await sg.mapResults('exitNow', [[[3]]]);
    assert.equal(dead!.ok, false);
    assert.equal(dead!.error!.name, 'WorkerDiedError');
    assert.match(dead!.error!.message, /exited with code 3 while running job \d+ \('exitNow'\); gave up after 2 attempt\(s\)/);
    assert.equal(dead!.attempts, 2);
    assert.deepEqual(
      await doubled,
      Array.from({ length: 50 }, (_, i) => i * 2),
    );
  });

  test('a job that dies inside a batch of innocent jobs: only it fails, every other job in the batch succeeds once', async () => {
    await sg.define('maybeExit', (n: number) => (n === 37 ? process.exit(9) : n));
    // Warm the credit window up so jobs travel in large batches, then hide the killer in one.
    await sg.map(
      'maybeExit',
      Array.from({ length: 200 }, () => [[0]] as [number[]]),
    );
    const results = await sg.mapResults(
      'maybeExit',
      Array.from({ length: 400 }, (_, i) => [[i]] as [number[]]),
    );
    const failed = results.filter((r) => !r.ok);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.id, results[37]!.id);
    assert.match(failed[0]!.error!.message, /exited with code 9/);
    assert.deepEqual(
      results.filter((r) => r.ok).map((r) => r.value),
      Array.from({ length: 400 }, (_, i) => i).filter((i) => i !== 37),
    );
  });

  test('a job that allocates without bound kills only its worker and is reported', async () => {
    const [r] = await sg.mapResults('hog', [[[]]]);
    assert.equal(r!.ok, false);
    assert.equal(r!.error!.name, 'WorkerDiedError');
    assert.match(r!.error!.message, /(killed by SIG|exited with code)/);
    assert.equal(await sg.submit('double', [21]), 42, 'the pool recovered');
  });
});

describe('retries are configurable', () => {
  test('with retries: 0 a job whose worker dies fails on its first attempt', async () => {
    const sg = await spawnScatterGather([], { workers: 1, retries: 0, echo: false });
    try {
      await sg.define('exitNow', () => process.exit(1));
      const [r] = await sg.mapResults('exitNow', [[[]]]);
      assert.equal(r!.attempts, 1);
      assert.match(r!.error!.message, /gave up after 1 attempt/);
    } finally {
      await sg.close();
    }
  });
});
