/**
 * Load: a million tiny jobs queued through the API at once, with the caller's and the controller's
 * resident memory watched the whole time; and the maxQueued limit's two signals.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnScatterGather, QueueFullError, type ScatterGather } from '../caller/index.js';

const JOBS = 1_000_000;
const CHUNK = 50_000;
/** Stated in docs/guarantees.md: caller + controller resident memory for this run. */
const BOUND_MB = 1024;

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) / 1024;
}

describe('a million tiny jobs', () => {
  let sg: ScatterGather;

  before(async () => {
    sg = await spawnScatterGather([], { workers: 2, echo: false });
    await sg.define('tiny', (n: number) => n);
  });
  after(() => sg.close());

  test(`1,000,000 jobs queued at once: every result arrives exactly once, caller + controller RSS stay under ${BOUND_MB} MB`, async () => {
    const controllerPid = sg.controllerPid!;
    let peak = { caller: 0, controller: 0, total: 0 };
    const sample = () => {
      const caller = process.memoryUsage.rss() / 1048576;
      const controller = rssMb(controllerPid);
      if (caller + controller > peak.total) peak = { caller, controller, total: caller + controller };
    };
    const started = performance.now();
    let first = 0;
    for (let start = 0; start < JOBS; start += CHUNK) {
      const ids = sg.addJob(
        'tiny',
        Array.from({ length: CHUNK }, (_, i) => [[start + i]] as [number[]]),
      );
      if (start === 0) first = ids[0]!;
    }
    sample();
    const queuedMs = performance.now() - started;
    const seen = new Uint8Array(JOBS);
    let received = 0;
    let lastSample = 0;
    while (received < JOBS) {
      for (const r of await sg.waitForResult()) {
        assert.ok(r.ok, String(r.error));
        const index = r.id - first;
        assert.equal(seen[index], 0, `job ${r.id} delivered twice`);
        assert.equal(r.value, index);
        seen[index] = 1;
        received++;
      }
      if (received - lastSample >= 20_000) {
        lastSample = received;
        sample();
      }
    }
    sample();
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `${JOBS} jobs: queued in ${queuedMs.toFixed(0)} ms, all results in ${seconds.toFixed(1)} s (${Math.round(JOBS / seconds)}/s); peak RSS caller ${peak.caller.toFixed(0)} MB + controller ${peak.controller.toFixed(0)} MB = ${peak.total.toFixed(0)} MB`,
    );
    // The caller's own tally agrees: every job counted once, as done, none failed.
    assert.deepEqual({ done: sg.progress.done, failed: sg.progress.failed, total: sg.progress.total }, { done: JOBS, failed: 0, total: JOBS });
    assert.equal(sg.outstanding, 0);
    assert.ok(peak.total < BOUND_MB, `caller + controller peaked at ${peak.total.toFixed(0)} MB, over the stated ${BOUND_MB} MB`);
  });
});

describe('a large backlog of results', () => {
  test('results() walks 300,000 results that arrived before it was called, and one that stops early leaves the rest for poll()', async () => {
    const sg = await spawnScatterGather([], { workers: 2, echo: false });
    try {
      await sg.define('id', (n: number) => n);
      const ids = sg.addJob(
        'id',
        Array.from({ length: 300_000 }, (_, i) => [[i]] as [number[]]),
      );
      await allArrived(sg);
      let seen = 0;
      for await (const r of sg.results()) {
        assert.ok(r.ok);
        if (++seen === 1000) break;
      }
      const rest = sg.poll();
      assert.equal(rest.length, 299_000, 'the results the loop did not reach are still there');
      assert.deepEqual(new Set(rest.map((r) => r.id)).size, 299_000);
      const walked = sg.addJob(
        'id',
        Array.from({ length: 300_000 }, (_, i) => [[i]] as [number[]]),
      );
      let count = 0;
      for await (const r of sg.results()) if (r.ok) count++;
      assert.equal(count, walked.length);
      assert.equal(ids.length, 300_000);
    } finally {
      await sg.close();
    }
  });
});

describe('maxQueued', () => {
  test('addJob past the limit throws a QueueFullError naming it and queues nothing; addJobAsync waits for room', async () => {
    const sg = await spawnScatterGather([], { workers: 1, echo: false, maxQueued: 1000 });
    try {
      await sg.define('slowish', async (n: number) => {
        await new Promise((resolve) => setImmediate(resolve));
        return n;
      });
      const firstIds = sg.addJob(
        'slowish',
        Array.from({ length: 800 }, (_, i) => [[i]] as [number[]]),
      );
      assert.throws(
        () =>
          sg.addJob(
            'slowish',
            Array.from({ length: 300 }, (_, i) => [[i]] as [number[]]),
          ),
        (error: unknown) => {
          assert.ok(error instanceof QueueFullError);
          assert.equal(error.limit, 1000);
          assert.match(error.message, /addJob of 300 job\(s\) refused: \d+ job\(s\) are outstanding and \d+ result\(s\) not yet taken, and maxQueued is 1000; nothing was queued/);
          return true;
        },
      );
      assert.ok(sg.outstanding <= 800, 'the refused call queued nothing');
      // 2500 jobs through a queue of 1000: addJobAsync feeds them in as results arrive and are taken.
      const taken: number[] = [];
      const take = () => taken.push(...sg.poll().map((r) => r.id));
      sg.on('progress', take);
      const moreIds = await sg.addJobAsync(
        'slowish',
        Array.from({ length: 2500 }, (_, i) => [[1000 + i]] as [number[]]),
      );
      assert.equal(moreIds.length, 2500);
      await sg.waitForResult({ all: true });
      sg.off('progress', take);
      take();
      assert.deepEqual(
        taken.sort((a, b) => a - b),
        [...firstIds, ...moreIds],
      );
      await assert.rejects(sg.waitForRoom(1001), /more than maxQueued \(1000\) can never fit/);
    } finally {
      await sg.close();
    }
  });

  test('a list spanning several pack groups, binary frames on some items, reaches every job intact, whole and fed in by addJobAsync', async () => {
    // 20,000 items are three pack groups of the caller's encoding; maxQueued 3,000 makes addJobAsync cut them elsewhere.
    const items = Array.from({ length: 20_000 }, (_, i) => (i % 997 === 0 ? [[i, new Float64Array([i, 0.5])]] : [[i]]) as [unknown[]]);
    const expected = items.map((_, i) => (i % 997 === 0 ? 3 * i + 0.5 : i));
    const mix = (i: number, extra?: Float64Array) => (extra ? i + 2 * extra[0]! + extra[1]! : i);
    const whole = await spawnScatterGather([], { workers: 2, echo: false });
    try {
      await whole.define('mix', mix);
      assert.deepEqual(await whole.map('mix', items), expected);
    } finally {
      await whole.close();
    }
    const fed = await spawnScatterGather([], { workers: 2, echo: false, maxQueued: 3000 });
    try {
      await fed.define('mix', mix);
      const values = new Map<number, unknown>();
      const take = () => {
        for (const result of fed.poll()) values.set(result.id, result.value);
      };
      fed.on('progress', take);
      const ids = await fed.addJobAsync('mix', items);
      await fed.waitForResult({ all: true });
      fed.off('progress', take);
      take();
      assert.deepEqual(
        ids.map((id) => values.get(id)),
        expected,
      );
    } finally {
      await fed.close();
    }
  });

  test('results not taken count against the limit: with nothing in flight, addJobAsync says so instead of waiting forever', async () => {
    const sg = await spawnScatterGather([], { workers: 1, echo: false, maxQueued: 100 });
    try {
      await sg.define('id', (n: number) => n);
      sg.addJob(
        'id',
        Array.from({ length: 100 }, (_, i) => [[i]] as [number[]]),
      );
      // Every result in, none taken.
      await allArrived(sg);
      await assert.rejects(sg.addJobAsync('id', [[[1]]]), (error: unknown) => {
        assert.ok(error instanceof QueueFullError);
        assert.match(error.message, /0 job\(s\) are outstanding and 100 result\(s\) not yet taken.*Take results with poll\(\)/);
        return true;
      });
      assert.equal(sg.poll().length, 100);
      assert.deepEqual(await sg.addJobAsync('id', [[[1]]]).then((ids) => ids.length), 1, 'taking them made room');
    } finally {
      await sg.close();
    }
  });
});

describe('lists longer than maxQueued', () => {
  const items = (n: number) => Array.from({ length: n }, (_, i) => [[i]] as [number[]]);

  test('addJobAsync with nobody taking results queues what fits, then rejects saying so, with those ids: none is lost', async () => {
    const sg = await spawnScatterGather([], { workers: 1, echo: false, maxQueued: 100 });
    try {
      await sg.define('work', (n: number) => n * 2);
      const error = await sg.addJobAsync('work', items(250)).then(
        () => assert.fail('addJobAsync resolved though nothing took results'),
        (error: unknown) => error,
      );
      assert.ok(error instanceof QueueFullError);
      assert.equal(error.queued.length, 100);
      assert.equal(error.adding, 150);
      assert.match(error.message, /^addJobAsync queued 100 of 250 job\(s\) \(ids in error\.queued; their results come as usual\) and gave up on the other 150/);
      const results = await sg.waitForResult({ all: true });
      assert.deepEqual(
        results.map((r) => r.id).sort((a, b) => a - b),
        error.queued,
      );
      assert.deepEqual(
        results.map((r) => r.value).sort((a, b) => (a as number) - (b as number)),
        Array.from({ length: 100 }, (_, i) => i * 2),
      );
    } finally {
      await sg.close();
    }
  });

  test('map, mapResults and results() take lists of any length under any maxQueued, never holding more than it', async () => {
    const sg = await spawnScatterGather([], { workers: 2, echo: false, maxQueued: 100 });
    let most = 0;
    sg.on('progress', (progress: { outstanding: number }) => (most = Math.max(most, progress.outstanding)));
    try {
      await sg.define('work', (n: number) => n * 2);
      assert.deepEqual(
        await sg.map('work', items(250)),
        Array.from({ length: 250 }, (_, i) => i * 2),
      );
      const results = await sg.mapResults('work', items(1000));
      assert.deepEqual(
        results.map((r) => r.value),
        Array.from({ length: 1000 }, (_, i) => i * 2),
      );
      assert.equal(new Set(results.map((r) => r.id)).size, 1000);
      // A failure anywhere is the one map rejects with, once all are back.
      await sg.define('fails', (n: number) => {
        if (n === 180) throw new Error('no 180');
        return n;
      });
      await assert.rejects(sg.map('fails', items(250)), /no 180/);
      // addJobAsync feeding while results() takes: every result comes, and results() waits for the jobs still to be queued.
      const adding = sg.addJobAsync('work', items(1000));
      const seen: number[] = [];
      for await (const result of sg.results()) seen.push(result.value as number);
      assert.equal((await adding).length, 1000);
      assert.deepEqual(
        seen.sort((a, b) => a - b),
        Array.from({ length: 1000 }, (_, i) => i * 2),
      );
      assert.ok(most <= 100, `at most maxQueued jobs outstanding at once (saw ${most})`);
    } finally {
      await sg.close();
    }
  });
});

/** Resolves once every job added has a result on the caller's side (taken or not). */
function allArrived(sg: ScatterGather): Promise<void> {
  return new Promise<void>((resolve) => {
    const check = () => {
      if (sg.outstanding > 0) return;
      sg.off('progress', check);
      resolve();
    };
    sg.on('progress', check);
    check();
  });
}
