/**
 * sg.stream's flow: a fast generator runs no further ahead of a paused reader than the stream
 * window, in parts and in bytes; a part yielded before the generator waits reaches the reader
 * without waiting for more parts to fill its batch; a worker that dies mid-stream is replaced and
 * the rerun's parts already given are skipped, so the reader sees each part once, in order.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnScatterGather, STREAM_WINDOW, STREAM_WINDOW_BYTES, type ScatterGather } from '../caller/index.js';
import { waitUntil } from './helpers.js';

/**
 * Parts stamped with when they were yielded. Reaching part `limit` (the worker then holds it while
 * the window is full), the generator leaves the file `mark`-filled; reaching the part after it,
 * `mark`-past.
 */
const COUNT = `async function* (n, mark, limit) {
  const fs = require('node:fs');
  for (let i = 0; i < n; i++) {
    if (i === limit) fs.writeFileSync(mark + '-filled', '');
    if (i === limit + 1) fs.writeFileSync(mark + '-past', '');
    yield { i, at: Date.now() };
  }
}`;
/** As COUNT, parts of `bytes` bytes (a Float64Array each). */
const HEAVY = `async function* (n, bytes, mark, limit) {
  const fs = require('node:fs');
  for (let i = 0; i < n; i++) {
    if (i === limit) fs.writeFileSync(mark + '-filled', '');
    if (i === limit + 1) fs.writeFileSync(mark + '-past', '');
    yield { i, at: Date.now(), data: new Float64Array(bytes / 8) };
  }
}`;
/**
 * Rounds of a burst of parts, a real wait, then one lone part; the next round starts once the
 * reader has the lone part (it leaves a file named after the round).
 */
const PACED = `async function* (dir, rounds, burst) {
  const fs = require('node:fs');
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < burst; i++) yield { r, i };
    await new Promise((resolve) => setTimeout(resolve, 1));
    yield { r, lone: true };
    while (!fs.existsSync(dir + '/' + r)) await new Promise((resolve) => setTimeout(resolve, 2));
  }
}`;
/** Yields 0 … n-1 (a rerun 0 … rerunN-1); the first run kills its worker at part `crashAt`, once the reader has the part before it. */
const CRASHING = `async function* (dir, n, crashAt, rerunN = n) {
  const fs = require('node:fs');
  const first = !fs.existsSync(dir + '/runs');
  fs.appendFileSync(dir + '/runs', 'x');
  for (let i = 0; i < (first ? n : rerunN); i++) {
    if (first && i === crashAt) {
      while (!fs.existsSync(dir + '/seen')) await new Promise((resolve) => setTimeout(resolve, 2));
      process.kill(process.pid, 'SIGKILL');
    }
    yield i;
  }
}`;

/** Resolves as `promise` does, or fails with `message` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  const timer = new AbortController();
  const late = sleep(ms, undefined, { signal: timer.signal }).then(() => assert.fail(message));
  late.catch(() => {});
  try {
    return await Promise.race([promise, late]);
  } finally {
    timer.abort();
  }
}

/**
 * Reads the stream, pausing after the first part until the generator has filled the window (the
 * file `mark`-filled); asserts that it went no further meanwhile (no `mark`-past); returns when
 * each part was yielded and when the reader went on.
 */
async function readWithPause(parts: AsyncIterable<{ at: number }>, mark: string): Promise<{ yieldedAt: number[]; resumedAt: number }> {
  const yieldedAt: number[] = [];
  let resumedAt = 0;
  for await (const part of parts) {
    yieldedAt.push(part.at);
    if (yieldedAt.length === 1) {
      await waitUntil(() => fs.existsSync(`${mark}-filled`), 60_000, 'the generator to fill the stream window');
      assert.equal(fs.existsSync(`${mark}-past`), false, 'the generator went past the window before the reader took anything');
      resumedAt = Date.now();
    }
  }
  assert.ok(fs.existsSync(`${mark}-past`), 'the generator went on once the reader made room');
  return { yieldedAt, resumedAt };
}

describe('sg.stream flow', () => {
  let sg: ScatterGather;
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsgather-stream-flow-'));
    sg = await spawnScatterGather([], { workers: 1, echo: false, progress: false });
    await sg.define('count', COUNT);
    await sg.define('heavy', HEAVY);
    await sg.define('paced', PACED);
    await sg.define('crashing', CRASHING);
  });
  after(async () => {
    await sg.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a fast generator runs at most STREAM_WINDOW parts ahead of a paused reader', async () => {
    const n = 2 * STREAM_WINDOW + 10;
    const mark = path.join(dir, 'parts-window');
    const { yieldedAt, resumedAt } = await readWithPause(sg.stream<{ i: number; at: number }>('count', [n, mark, STREAM_WINDOW]), mark);
    assert.equal(yieldedAt.length, n);
    // Parts 0 … STREAM_WINDOW - 1 may go before the reader goes on; the generator may have yielded
    // one more, held until credit comes. No later part may be yielded before the reader went on.
    const early = yieldedAt.map((at, i) => (i > STREAM_WINDOW && at < resumedAt ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(early.slice(0, 5), [], `${early.length} parts yielded before the reader made room for them`);
  });

  test('a generator of large parts runs at most STREAM_WINDOW_BYTES ahead of a paused reader', async () => {
    const bytes = 128 * 1024;
    const ahead = Math.ceil(STREAM_WINDOW_BYTES / bytes); // parts that fill the byte window
    const n = 2 * ahead + 10;
    const mark = path.join(dir, 'bytes-window');
    // The worker holds part `ahead` once parts 0 … ahead - 1 (16 MiB and their texts) are out.
    const { yieldedAt, resumedAt } = await readWithPause(sg.stream<{ i: number; at: number }>('heavy', [n, bytes, mark, ahead]), mark);
    assert.equal(yieldedAt.length, n);
    const early = yieldedAt.map((at, i) => (i > ahead && at < resumedAt ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(early.slice(0, 5), [], `${early.length} parts yielded before the reader made room for them`);
  });

  test('a part yielded before the generator waits arrives without waiting for more parts', async () => {
    const rounds = 5;
    const burst = 100;
    const lone = path.join(dir, 'lone');
    fs.mkdirSync(lone);
    const parts: Array<{ r: number; i?: number; lone?: boolean }> = [];
    // Were the lone part held back for a fuller batch, the generator would wait for ever for its file.
    await within(
      (async () => {
        for await (const part of sg.stream<{ r: number; i?: number; lone?: boolean }>('paced', [lone, rounds, burst])) {
          parts.push(part);
          if (part.lone) fs.writeFileSync(path.join(lone, String(part.r)), '');
        }
      })(),
      30_000,
      'a lone part never came: it waited in its batch',
    );
    assert.equal(parts.length, rounds * (burst + 1));
    assert.deepEqual(
      parts.filter((p) => p.lone).map((p) => p.r),
      [0, 1, 2, 3, 4],
    );
  });

  test('a worker that dies mid-stream: the rerun gives the parts not given yet, each once, in order', async () => {
    const n = 3000;
    const crashAt = 1500;
    const crash = path.join(dir, 'crash');
    fs.mkdirSync(crash);
    const parts: number[] = [];
    await within(
      (async () => {
        for await (const part of sg.stream<number>('crashing', [crash, n, crashAt])) {
          parts.push(part);
          if (part === crashAt - 1) fs.writeFileSync(path.join(crash, 'seen'), '');
        }
      })(),
      60_000,
      'the stream did not end after its worker died',
    );
    assert.equal(fs.readFileSync(path.join(crash, 'runs'), 'utf8'), 'xx', 'the job ran twice: it died, then ran again');
    assert.deepEqual(
      parts,
      Array.from({ length: n }, (_, i) => i),
    );
  });

  test('a rerun that yields fewer parts than were given: the reader gets them, then an error, not a quiet end', async () => {
    const crash = path.join(dir, 'shrink');
    fs.mkdirSync(crash);
    const parts: number[] = [];
    const read = (async () => {
      for await (const part of sg.stream<number>('crashing', [crash, 20, 10, 5])) {
        parts.push(part);
        if (part === 9) fs.writeFileSync(path.join(crash, 'seen'), '');
      }
    })();
    await assert.rejects(within(read, 60_000, 'the stream did not end after its worker died'), /yielded 5 parts, but 10 came/);
    assert.deepEqual(
      parts,
      Array.from({ length: 10 }, (_, i) => i),
    );
  });
});
