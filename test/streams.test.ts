/**
 * sg.stream: a job whose function is an async generator gives its parts to the caller as they are
 * yielded, no further ahead of the reader than the stream window, on the embedded cluster and
 * through a server; its failure comes after the parts before it; a reader that stops early frees
 * the worker; called through map, such a function's parts are its result, as a list.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnScatterGather, STREAM_WINDOW, type ScatterGather } from '../caller/index.js';
import { startServer, type RunningServer } from './helpers.js';

const COUNT = `async function* (n) { for (let i = 0; i < n; i++) yield { i, at: Date.now() }; }`;
const FAILING = `async function* () { yield 1; yield 2; yield 3; throw new RangeError('ran dry'); }`;

async function defineAll(sg: ScatterGather): Promise<void> {
  await sg.define('count', COUNT);
  await sg.define('failing', FAILING);
}

describe('sg.stream on the embedded cluster', () => {
  let sg: ScatterGather;
  before(async () => {
    sg = await spawnScatterGather([], { workers: 1, echo: false, progress: false });
    await defineAll(sg);
  });
  after(() => sg.close());

  test('gives every part, in order, as it is yielded', async () => {
    const parts: number[] = [];
    for await (const part of sg.stream<{ i: number }>('count', [1000])) parts.push(part.i);
    assert.deepEqual(
      parts,
      Array.from({ length: 1000 }, (_, i) => i),
    );
    assert.equal(sg.outstanding, 0);
  });

  test('a fast generator waits for a slow reader: it never runs more than the window ahead', async () => {
    const takenAt: number[] = [];
    const yieldedAt: number[] = [];
    for await (const part of sg.stream<{ i: number; at: number }>('count', [300])) {
      takenAt.push(Date.now());
      yieldedAt.push(part.at);
      await sleep(2); // a reader slower than the generator
    }
    // Part i can only be yielded once the reader has taken part i - window - one credit step.
    const lag = STREAM_WINDOW + STREAM_WINDOW / 2;
    const early = yieldedAt.map((at, i) => (i > lag && at < takenAt[i - lag - 1]! ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(early, [], `parts yielded before the reader made room for them`);
    assert.ok(yieldedAt[299]! > takenAt[150]!, 'the last parts were yielded late, as the reader took the earlier ones');
  });

  test("a failure comes after the parts before it, as the job's error", async () => {
    const parts: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const part of sg.stream<number>('failing')) parts.push(part);
      })(),
      (error: Error) => error.name === 'RangeError' && error.message === 'ran dry',
    );
    assert.deepEqual(parts, [1, 2, 3]);
  });

  test('a reader that stops early frees the worker: the job runs to its end and the next one runs', async () => {
    let read = 0;
    for await (const _ of sg.stream('count', [10 * STREAM_WINDOW])) if (++read === 5) break;
    // One worker: were the stopped job stuck waiting for credit, this would never run.
    const next = sg.map<Array<{ i: number }>>('count', [[[2]]]);
    const timer = new AbortController();
    const stuck = sleep(15_000, undefined, { signal: timer.signal }).then(() => assert.fail('the next job did not run: the stopped stream holds its worker'));
    stuck.catch(() => {}); // aborted once the job ran
    const [parts] = await Promise.race([next, stuck]);
    timer.abort();
    assert.deepEqual(
      parts!.map((p) => p.i),
      [0, 1],
    );
  });

  test("through map, a generator's parts are its result, as a list", async () => {
    const [parts] = await sg.map<Array<{ i: number }>>('count', [[[3]]]);
    assert.deepEqual(
      parts!.map((p) => p.i),
      [0, 1, 2],
    );
  });
});

describe('sg.stream through a server', () => {
  let server: RunningServer;
  let sg: ScatterGather;
  before(async () => {
    server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--log-level', 'error']);
    sg = await spawnScatterGather([server.endpoint], { echo: false, progress: false });
    await defineAll(sg);
  });
  after(async () => {
    await sg.close();
    await server.stop();
  });

  test('parts and credit pass the server', async () => {
    let n = 0;
    for await (const part of sg.stream<{ i: number }>('count', [5 * STREAM_WINDOW])) assert.equal(part.i, n++);
    assert.equal(n, 5 * STREAM_WINDOW);
  });
});
