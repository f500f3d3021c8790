/**
 * sg.stream: a job whose function is an async generator gives its parts to the caller as they are
 * yielded, in batches, on the embedded cluster and through a server: every part in order, binary
 * parts as binary, a part past the batch's byte cap; its failure comes after the parts before it;
 * a reader that stops early ends the generator and frees the worker, a rerun too; called through map, such a function's parts are its
 * result, as a list. The windows, a lone part's latency and a crash: stream-flow.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnScatterGather, STREAM_WINDOW, type JobPart, type ScatterGather } from '../caller/index.js';
import { STREAM_STOPPED } from '../protocol/index.js';
import { BATCH_BYTES, BATCH_PARTS, StreamCredits, type PartBatch } from '../server/worker-stream.js';
import { startServer, type RunningServer } from './helpers.js';

const COUNT = `async function* (n) { for (let i = 0; i < n; i++) yield { i, at: Date.now() }; }`;
const FAILING = `async function* (n = 3) { for (let i = 1; i <= n; i++) yield i; throw new RangeError('ran dry'); }`;
/** Part i: a Float64Array of `length` numbers i, i+1, ...; every third part a plain object, every fifth a Map too. */
const BINARY = `async function* (n, length) {
  for (let i = 0; i < n; i++) {
    const data = Float64Array.from({ length }, (_, k) => i + k);
    yield i % 3 === 0 ? { i, data } : i % 5 === 0 ? new Map([['i', i], ['data', data]]) : data;
  }
}`;
/** Small parts around parts far past the batch's byte cap: a binary one and a plain text one. */
const LARGE = `async function* (bytes) {
  yield 'before';
  yield new Float64Array(bytes / 8).fill(2.5);
  yield 'between';
  yield 'x'.repeat(bytes);
  yield 'after';
}`;

/** Yields for ever; its finally marks the worker when the generator is ended. */
const FOREVER = `async function* () { globalThis.ended = false; try { for (let i = 0; ; i++) yield i; } finally { globalThis.ended = true; } }`;
/** The first run yields once, then waits a minute (deaf to a stop); a rerun yields for ever, as FOREVER. */
const FORGETFUL = `async function* (marker) {
  const fs = await import('node:fs');
  if (!fs.existsSync(marker)) {
    fs.writeFileSync(marker, '');
    yield 'first';
    await new Promise((resolve) => setTimeout(resolve, 60_000));
  }
  globalThis.ended = false;
  try { for (let i = 0; ; i++) yield i; } finally { globalThis.ended = true; }
}`;

/** `promise`, or a failure once `seconds` pass without it (a job that never runs). */
async function withinSeconds<T>(seconds: number, promise: Promise<T>): Promise<T> {
  const timer = new AbortController();
  const late = sleep(seconds * 1000, undefined, { signal: timer.signal }).then(() => assert.fail(`not settled within ${seconds} s: the stopped stream holds its worker`));
  late.catch(() => {}); // aborted once settled
  try {
    return await Promise.race([promise, late]);
  } finally {
    timer.abort();
  }
}

async function defineAll(sg: ScatterGather): Promise<void> {
  await sg.define('count', COUNT);
  await sg.define('forever', FOREVER);
  await sg.define('forgetful', FORGETFUL);
  await sg.define('endedAt', () => ({ ended: (globalThis as { ended?: boolean }).ended }));
  await sg.define('failing', FAILING);
  await sg.define('binary', BINARY);
  await sg.define('large', LARGE);
}

async function collect<T>(parts: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const part of parts) all.push(part);
  return all;
}

function checkBinaryParts(parts: unknown[], n: number, length: number): void {
  assert.equal(parts.length, n);
  parts.forEach((part, i) => {
    const data = i % 3 === 0 ? (part as { i: number; data: unknown }).data : i % 5 === 0 ? (part as Map<string, unknown>).get('data') : part;
    assert.ok(data instanceof Float64Array, `part ${i} is a Float64Array`);
    assert.equal(data.length, length);
    assert.equal(data[0], i);
    assert.equal(data[length - 1], i + length - 1);
  });
}

describe('sg.stream on the embedded cluster', () => {
  let sg: ScatterGather;
  before(async () => {
    sg = await spawnScatterGather([], { workers: 1, echo: false, progress: false });
    await defineAll(sg);
  });
  after(() => sg.close());

  test('gives every part, in order, across many batches and credits', async () => {
    const n = 2 * STREAM_WINDOW + BATCH_PARTS / 2 + 7;
    const parts = await collect(sg.stream<{ i: number }>('count', [n]));
    assert.deepEqual(
      parts.map((p) => p.i),
      Array.from({ length: n }, (_, i) => i),
    );
    assert.equal(sg.outstanding, 0);
  });

  test('binary parts travel as binary, mixed with plain and other parts in a batch', async () => {
    const n = BATCH_PARTS + 100;
    checkBinaryParts(await collect(sg.stream('binary', [n, 4])), n, 4);
  });

  test('a part larger than the byte cap of a batch goes, between small ones, in order', async () => {
    const bytes = 3 * BATCH_BYTES;
    const parts = await collect(sg.stream<unknown>('large', [bytes]));
    assert.equal(parts.length, 5);
    assert.deepEqual([parts[0], parts[2], parts[4]], ['before', 'between', 'after']);
    const data = parts[1] as Float64Array;
    assert.ok(data instanceof Float64Array);
    assert.equal(data.length, bytes / 8);
    assert.ok(data.every((x) => x === 2.5));
    assert.equal(parts[3], 'x'.repeat(bytes));
  });

  test("a failure comes after the parts before it, as the job's error", async () => {
    for (const n of [3, BATCH_PARTS * 2 + 5]) {
      const parts: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const part of sg.stream<number>('failing', [n])) parts.push(part);
        })(),
        (error: Error) => error.name === 'RangeError' && error.message === 'ran dry',
      );
      assert.deepEqual(
        parts,
        Array.from({ length: n }, (_, i) => i + 1),
      );
    }
  });

  test('a reader that stops early ends the generator (its finally runs) and frees the worker', async () => {
    let read = 0;
    for await (const _ of sg.stream('forever', [])) if (++read === 5) break;
    // One worker: were the endless generator still running, this job would never run.
    assert.deepEqual(await withinSeconds(15, sg.map('endedAt', [[[]]])), [{ ended: true }]);
  });

  test('a rerun of a stream its reader left (its worker died meanwhile) is ended too', async () => {
    const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tsgather-stream-')), 'first-run');
    const { pid } = (await sg.status()).servers[0]!.workers![0]!;
    for await (const _ of sg.stream('forgetful', [marker])) break; // the first run then waits, deaf to the stop
    process.kill(pid, 'SIGKILL');
    // The rerun (endless, from part 0) must hear the stop again, or it holds the only worker for ever.
    assert.deepEqual(await withinSeconds(15, sg.map('endedAt', [[[]]])), [{ ended: true }]);
  });

  test("addJob with { stream: true }: each job's parts are 'part' events as they come; its result is their number", async () => {
    const parts = new Map<number, number[]>();
    const onPart = ({ job, n, value }: JobPart) => {
      const seen = parts.get(job) ?? [];
      assert.equal(n, seen.length, `job ${job}'s parts come in order`);
      seen.push((value as { i: number }).i);
      parts.set(job, seen);
    };
    sg.on('part', onPart);
    try {
      const sizes = [0, 1, 5, 3 * STREAM_WINDOW]; // the last needs credit from the events to finish
      const ids = sg.addJob(
        'count',
        sizes.map((n) => [[n]] as [number[]]),
        { stream: true },
      );
      const results = await sg.waitForResult({ all: true });
      assert.deepEqual(
        results.map((r) => [r.id, r.value]),
        ids.map((id, k) => [id, sizes[k]]),
      );
      for (const [k, id] of ids.entries()) {
        assert.deepEqual(
          parts.get(id) ?? [],
          Array.from({ length: sizes[k]! }, (_, i) => i),
        );
      }
    } finally {
      sg.off('part', onPart);
    }
  });

  test("a 'part' listener that throws loses no other part, and its job still completes", async () => {
    const n = 10_000; // past two windows: the job needs the credit of the batch that threw
    const seen: number[] = [];
    const errors: unknown[] = [];
    const onPart = ({ n: i }: JobPart) => {
      seen.push(i);
      if (i === 5) throw new Error('listener fails on part 5');
    };
    const onEvent = (event: { kind: string; detail: unknown }) => {
      if (event.kind === 'part-listener-error') errors.push(event.detail);
    };
    sg.on('part', onPart);
    sg.on('event', onEvent);
    try {
      const [id] = sg.addJob('count', [[[n]]], { stream: true });
      const [result] = await withinSeconds(30, sg.waitForResult({ all: true }));
      assert.deepEqual([result!.id, result!.value], [id, n]);
      assert.deepEqual(
        seen,
        Array.from({ length: n }, (_, i) => i),
      );
      assert.deepEqual(errors, [{ job: id, n: 5, error: 'listener fails on part 5' }]);
    } finally {
      sg.off('part', onPart);
      sg.off('event', onEvent);
    }
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
    for await (const part of sg.stream<{ i: number }>('count', [3 * STREAM_WINDOW])) assert.equal(part.i, n++);
    assert.equal(n, 3 * STREAM_WINDOW);
  });

  test('binary parts pass the server as binary', async () => {
    checkBinaryParts(await collect(sg.stream('binary', [300, 1000])), 300, 1000);
  });
});

describe('two sessions sharing a server stream jobs with the same ids', () => {
  test("a worker's stream credits: session A stopping its job 1 does not end session B's job 1", async () => {
    const credits = new StreamCredits();
    const total = STREAM_WINDOW + 10;
    let sent = 0;
    let windowFull: () => void = () => {};
    const full = new Promise<void>((resolve) => (windowFull = resolve));
    const send = (batch: PartBatch) => {
      assert.equal(batch.n, sent, 'batches in order');
      sent += batch.count;
      if (sent >= STREAM_WINDOW) windowFull();
    };
    const numbers = function* () {
      for (let i = 0; i < total; i++) yield i;
    };
    const result = credits.stream('B', 1, numbers(), send, async () => {});
    await full; // B's window is full: it waits for B's credit
    credits.credit('A', 1, STREAM_STOPPED); // A's reader stopped its own job 1
    credits.credit('A', 1, total);
    assert.equal(sent, STREAM_WINDOW, "A's credit gave B no room");
    credits.credit('B', 1, STREAM_WINDOW);
    assert.equal(await result, total);
    assert.equal(sent, total);
  });

  test("after a stop, a worker's job result counts the parts sent, not those dropped with the stop", async () => {
    const credits = new StreamCredits();
    let sent = 0;
    const send = (batch: PartBatch) => (sent += batch.count);
    const parts = function* () {
      for (let i = 0; i < 100; i++) yield i; // back to back: all but the first gathered into one batch
      credits.credit('A', 1, STREAM_STOPPED); // the reader stops before that batch went
      yield 100;
    };
    const result = await credits.stream('A', 1, parts(), send, async () => {});
    assert.ok(sent < 100, `the stop came before the gathered parts went (${sent} sent)`);
    assert.equal(result, sent);
  });

  describe('through one server with one worker', () => {
    let server: RunningServer;
    let a: ScatterGather;
    let b: ScatterGather;
    before(async () => {
      server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--log-level', 'error']);
      [a, b] = await Promise.all([spawnScatterGather([server.endpoint], { echo: false, progress: false }), spawnScatterGather([server.endpoint], { echo: false, progress: false })]);
      await a.define('one', `async function* () { yield 'only'; }`);
      await b.define('paced', `async function* (n) { for (let i = 0; i < n; i++) { if (i % 100 === 0) await new Promise((resolve) => setTimeout(resolve, 1)); yield i; } }`);
    });
    after(async () => {
      await Promise.all([a.close(), b.close()]);
      await server.stop();
    });

    test("A's stop after its last part never ends B's stream of the same job id", async () => {
      const n = 3000;
      for (let round = 0; round < 10; round++) {
        // Each round both sessions add one job, so their job ids stay the same; B's runs right after A's.
        const first = firstPartThenStop(a);
        const read = collect(b.stream<number>('paced', [n]));
        assert.equal(await first, 'only');
        const parts = await read;
        assert.equal(parts.length, n, `round ${round}: B got ${parts.length} of its ${n} parts`);
        assert.ok(
          parts.every((part, i) => part === i),
          `round ${round}: B's parts in order`,
        );
      }
    });
  });
});

/** The first part of A's one-part stream, its reader stopping right after it (a break). */
async function firstPartThenStop(a: ScatterGather): Promise<unknown> {
  for await (const part of a.stream('one', [])) return part;
  assert.fail('no part');
}
