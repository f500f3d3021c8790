/**
 * The worker runtime in this process, with no worker process: definitions, the result hold, output
 * capture and the messages to the server, over a real ZeroMQ socket pair (the test's Router is the
 * server; the runtime's Dealer is the worker's own).
 */
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import type { EncodedValue } from '../protocol/codec.js';
import { CONTROLLER_WINDOW_MS, RESULT_HOLD_MS } from '../protocol/flow-control.js';
import { packPlainValues, valuesOfRun } from '../protocol/job-values.js';
import type { DefinitionSpec, OutputRow } from '../protocol/messages.js';
import { WorkerRow, WorkerRows } from '../protocol/rows.js';
import { compileDefinition, Definitions } from '../server/definitions.js';
import { FLUSH_MAX_RESULTS, FLUSH_MAX_TEXT, ResultHold, type ResultBatch } from '../server/result-batch.js';
import { WorkerRuntime } from '../server/worker-runtime.js';

const W = 7;
const CONTROLLER = 'c1';
let endpoints = 0;

/** What the runtime sent: a results message for a controller, or a head to the server itself. */
interface Received {
  to: string;
  head: { t: string; [key: string]: unknown };
  jobs: number[];
  ok: boolean[];
  versions: number[];
  values: unknown[];
  out: OutputRow[];
}

/** A runtime connected to a Router that plays its server. */
class Harness {
  readonly router = new zmq.Router({ linger: 0, receiveTimeout: 10_000 });
  readonly runtime: WorkerRuntime;
  private readonly running: Promise<void>;
  private readonly socket = new zmq.Dealer({ linger: 0 });

  private constructor(endpoint: string, options: { maxRssBytes?: number; module?: string }) {
    this.runtime = new WorkerRuntime(this.socket, { id: W, ...options });
    this.running = this.runtime.start(endpoint);
  }

  static async start(options: { maxRssBytes?: number; module?: string } = {}): Promise<Harness> {
    const endpoint = `inproc://worker-runtime-test-${endpoints++}`;
    const harness = new Harness(endpoint, options);
    await harness.router.bind(endpoint);
    return harness;
  }

  /** Usage reports, which come on their own clock, set apart from the other messages (see usage tests). */
  readonly usage: Array<Array<[string, number]>> = [];

  async next(): Promise<Received> {
    let message = await this.router.receive();
    while (message[1]!.length === 0 && JSON.parse(message[2]!.toString()).t === 'usage') {
      this.usage.push(JSON.parse(message[2]!.toString()).ms);
      message = await this.router.receive();
    }
    const [peer, to, head, rows, values, out] = message;
    assert.equal(peer!.toString(), `w${W}`, 'messages come from the routing id w<id>');
    const received: Received = { to: to!.toString(), head: JSON.parse(head!.toString()), jobs: [], ok: [], versions: [], values: [], out: [] };
    if (received.head.t !== 'results') return received;
    const parsed = new WorkerRows(rows);
    for (let row = 0; row < parsed.count; row++) {
      received.jobs.push(parsed.job(row));
      received.ok.push(parsed.ok(row));
      received.versions.push(parsed.data[row * WorkerRow.width + WorkerRow.version]!);
    }
    received.values = JSON.parse(values!.toString());
    received.out = JSON.parse(out!.toString());
    return received;
  }

  /** Messages until every job in `ids` has a result (and what came with them). */
  async resultsFor(count: number): Promise<Received[]> {
    const messages: Received[] = [];
    let results = 0;
    while (results < count) {
      const message = await this.next();
      messages.push(message);
      results += message.jobs.length;
    }
    return messages;
  }

  /** Fails if anything arrives within `ms`. */
  async nothingWithin(ms: number): Promise<void> {
    this.router.receiveTimeout = ms;
    await assert.rejects(this.router.receive(), (error: { code?: string }) => error.code === 'EAGAIN');
    this.router.receiveTimeout = 10_000;
  }

  async define(...defs: DefinitionSpec[]): Promise<void> {
    await this.defineFor(CONTROLLER, ...defs);
  }

  async defineFor(controller: string, ...defs: DefinitionSpec[]): Promise<void> {
    await this.router.send([`w${W}`, controller, JSON.stringify({ t: 'define', w: W }), JSON.stringify({ defs })]);
  }

  /** One jobs message of runs of plain items, each `[fn, first id, args of each job, timeout ms]`. */
  async jobs(...runs: Array<[fn: string, first: number, args: unknown[][], timeoutMs?: number]>): Promise<void> {
    await this.jobsFor(CONTROLLER, ...runs);
  }

  async jobsFor(controller: string, ...runs: Array<[fn: string, first: number, args: unknown[][], timeoutMs?: number]>): Promise<void> {
    const frames: Array<string | Buffer> = [`w${W}`, controller, JSON.stringify({ t: 'jobs', w: W })];
    frames.push(JSON.stringify(runs.map(([fn, first, args, timeoutMs = 0]) => [first, args.length, fn, timeoutMs, 0])));
    for (const [, , args] of runs) frames.push(valuesOfRun(packPlainValues(args.map((a) => [a])), 0, args.length));
    await this.router.send(frames);
  }

  async close(): Promise<void> {
    this.socket.close();
    await this.running;
    this.runtime.close();
    this.router.close();
  }
}

describe('compileDefinition', () => {
  test('takes arrows, function declarations and expressions, async functions and method shorthand', async () => {
    assert.equal(compileDefinition('(a, b) => a + b')(2, 3), 5);
    assert.equal(compileDefinition('function add(a, b) { return a + b; }')(2, 3), 5);
    assert.equal(compileDefinition('function (x) { return -x; }')(4), -4);
    assert.equal(await compileDefinition('async (x) => x * 10')(4), 40);
    assert.equal(compileDefinition('double(x) { return 2 * x; }')(21), 42);
    assert.equal(await compileDefinition('async triple(x) { return 3 * x; }')(2), 6);
  });

  test('refuses a source that is not a function with a TypeError, and passes on errors other than syntax', () => {
    for (const source of ['42', '{ a: 1 }', 'a: 1, b: () => 2', '=> nothing']) {
      assert.throws(() => compileDefinition(source), { name: 'TypeError', message: 'definition source does not evaluate to a function' }, source);
    }
    assert.throws(() => compileDefinition('notDefinedAnywhere'), { name: 'ReferenceError' });
  });
});

describe('Definitions', () => {
  test('a definition that fails to compile becomes one that throws a DefinitionError, with its version', () => {
    const definitions = new Definitions();
    definitions.define(CONTROLLER, [{ name: 'broken', version: 3, source: '42' }]);
    const found = definitions.lookup(CONTROLLER, 'broken')!;
    assert.equal(found.version, 3);
    assert.throws(() => found.fn(), { name: 'DefinitionError', message: "definition of 'broken' v3 failed to compile here: TypeError: definition source does not evaluate to a function" });
  });

  test('keeps definitions per controller, ahead of preloaded functions, and names what is known when a name is not', async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'tsgather-definitions-'));
    try {
      const module = join(dir, 'functions.mjs');
      writeFileSync(module, 'export const square = (x) => x * x;\nexport const label = "not a function";\nexport default { cube: (x) => x ** 3 };\n');
      const definitions = new Definitions();
      await definitions.preload(module);
      assert.deepEqual(definitions.preloadedNames().sort(), ['cube', 'square']);
      definitions.define('a', [{ name: 'square', version: 2, source: '(x) => -x' }]);
      assert.equal(definitions.lookup('a', 'square')!.version, 2);
      assert.equal(definitions.lookup('a', 'square')!.fn(3), -3);
      assert.equal(definitions.lookup('b', 'square')!.version, 0, "another controller sees the preloaded function, not a's");
      assert.equal(definitions.lookup('b', 'square')!.fn(3), 9);
      assert.equal(definitions.lookup('b', 'nope'), undefined);
      assert.equal(definitions.unknownFunction('a', 'nope').name, 'UnknownFunctionError');
      assert.match(definitions.unknownFunction('a', 'nope').message, /^no function named 'nope' on this worker; known: square, (square, cube|cube, square) \(use define\(\) first\)$/);
      assert.match(new Definitions().unknownFunction('a', 'nope').message, /nothing is defined yet/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ResultHold', () => {
  const value = (text: string): EncodedValue => ({ text, bins: [], plain: true });
  function hold() {
    let now = 1000;
    const sent: Array<[string, number[], string[]]> = [];
    const rows = (batch: ResultBatch) => Array.from(new WorkerRows(Buffer.from(batch.rows.bytes())).data.filter((_, i) => i % WorkerRow.width === WorkerRow.job));
    const results = new ResultHold(
      (controller, batch) => sent.push([controller, rows(batch), batch.values]),
      () => now,
    );
    return { results, sent, advance: (ms: number) => (now += ms), now: () => now };
  }

  test('shares its window with the controller: results go at least every half window', () => {
    assert.equal(RESULT_HOLD_MS, CONTROLLER_WINDOW_MS / 2);
  });

  test('holds results while jobs are queued, until the hold has passed, and sends at once when the queue is empty', () => {
    const { results, sent, advance, now } = hold();
    results.add(CONTROLLER, 1, true, value('1'), 0, 0, 1);
    advance(RESULT_HOLD_MS - 1);
    assert.equal(results.due(now(), false), false, 'held while jobs are queued and the hold has not passed');
    assert.equal(results.due(now(), true), true, 'sent when the queue is empty');
    advance(1);
    assert.equal(results.due(now(), false), true, 'sent once the hold has passed');
    results.flush();
    assert.deepEqual(sent, [[CONTROLLER, [1], ['1']]]);
    assert.equal(results.results, 0);
    assert.equal(results.due(now(), false), false, 'the hold starts again at a flush');
  });

  test('sends once it holds FLUSH_MAX_RESULTS results, in one batch per controller', () => {
    const { results, sent, now } = hold();
    for (let job = 0; job < FLUSH_MAX_RESULTS - 1; job++) results.add(job % 2 ? 'odd' : 'even', job, true, value('null'), 0, 0, 1);
    assert.equal(results.due(now(), false), false);
    results.add('odd', FLUSH_MAX_RESULTS - 1, true, value('null'), 0, 0, 1);
    assert.equal(results.due(now(), false), true);
    results.flush();
    assert.deepEqual(
      sent.map(([controller, jobs]) => [controller, jobs.length]),
      [
        ['even', FLUSH_MAX_RESULTS / 2],
        ['odd', FLUSH_MAX_RESULTS / 2],
      ],
    );
    results.flush();
    assert.equal(sent.length, 2, 'an empty hold sends nothing');
  });

  test('sends what it holds before a result that would take it past FLUSH_MAX_TEXT, so a large result goes alone', () => {
    const { results, sent, now } = hold();
    results.add(CONTROLLER, 1, true, value('"small"'), 0, 0, 1);
    const large = 'x'.repeat(FLUSH_MAX_TEXT);
    results.add(CONTROLLER, 2, true, value(large), 0, 0, 1);
    assert.deepEqual(sent, [[CONTROLLER, [1], ['"small"']]]);
    assert.equal(results.due(now(), false), true, 'and is due once it holds that much text');
    results.flush();
    assert.deepEqual(sent[1]![1], [2]);
  });
});

describe('WorkerRuntime over a socket', () => {
  let harness: Harness | undefined;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  test('says it is ready to the server itself, then runs jobs and sends their results to their controller', async () => {
    harness = await Harness.start();
    const ready = await harness.next();
    assert.equal(ready.to, '', 'an empty first frame addresses the server');
    assert.deepEqual(ready.head, { t: 'ready', w: W, pid: process.pid, functions: [] });
    await harness.define({ name: 'add', version: 4, source: '(a, b) => a + b' }, { name: 'broken', version: 2, source: '"not a function"' });
    await harness.jobs(
      [
        'add',
        10,
        [
          [1, 2],
          [3, 4],
        ],
      ],
      ['broken', 12, [[]]],
      ['missing', 13, [[]]],
    );
    // The first result after a while idle goes at once (the hold has long passed); the rest wait for the queue to run dry.
    const messages = await harness.resultsFor(4);
    assert.ok(messages.every((m) => m.to === CONTROLLER && m.head.t === 'results' && m.head.w === W));
    const results = { jobs: messages.flatMap((m) => m.jobs), ok: messages.flatMap((m) => m.ok), versions: messages.flatMap((m) => m.versions), values: messages.flatMap((m) => m.values) };
    assert.deepEqual(results.jobs, [10, 11, 12, 13]);
    assert.deepEqual(results.ok, [true, true, false, false]);
    assert.deepEqual(results.versions, [4, 4, 2, 0]);
    assert.deepEqual(results.values.slice(0, 2), [3, 7]);
    assert.equal((results.values[2] as { name: string }).name, 'DefinitionError');
    assert.match((results.values[2] as { message: string }).message, /^definition of 'broken' v2 failed to compile here: TypeError/);
    assert.equal((results.values[3] as { name: string }).name, 'UnknownFunctionError');
  });

  test("forgets a controller whose session ended: its queued jobs and definitions go, another controller's stay", async () => {
    harness = await Harness.start();
    await harness.next(); // ready
    const slow = { name: 'slow', version: 1, source: 'async (x) => { await new Promise((r) => setTimeout(r, 50)); return x; }' };
    const id = { name: 'id', version: 1, source: '(x) => x' };
    await harness.defineFor('gone', slow, id);
    await harness.defineFor('stays', id);
    // 'gone' has one job running (it awaits) and three queued behind it when its session ends.
    await harness.jobsFor('gone', ['slow', 1, [[1]]], ['id', 2, [[2], [3], [4]]]);
    await harness.jobsFor('stays', ['id', 5, [[5], [6]]]);
    await harness.router.send([`w${W}`, 'gone', JSON.stringify({ t: 'forget' })]);
    await harness.jobsFor('gone', ['id', 7, [[7]]]);
    const messages = await harness.resultsFor(4);
    const of = (to: string) => messages.filter((m) => m.to === to).flatMap((m) => m.jobs.map((job, i) => [job, m.ok[i]]));
    // The running job finishes; the queued ones never run; a later job finds no definition.
    assert.deepEqual(of('gone'), [
      [1, true],
      [7, false],
    ]);
    assert.deepEqual(of('stays'), [
      [5, true],
      [6, true],
    ]);
  });

  test('holds the results of tiny jobs while more are queued: a thousand come back in a few messages', async () => {
    harness = await Harness.start();
    await harness.next();
    await harness.define({ name: 'id', version: 1, source: '(x) => x' });
    await harness.jobs(['id', 0, Array.from({ length: 1000 }, (_, i) => [i])]);
    const messages = await harness.resultsFor(1000);
    assert.ok(messages.length <= 10, `${messages.length} messages for 1000 tiny jobs`);
    assert.deepEqual(
      messages.flatMap((m) => m.jobs),
      Array.from({ length: 1000 }, (_, i) => i),
    );
    assert.deepEqual(
      messages.flatMap((m) => m.values),
      Array.from({ length: 1000 }, (_, i) => i),
    );
  });

  test('sends what it holds once the hold has passed, though jobs are still queued', async () => {
    harness = await Harness.start();
    await harness.next();
    const spin = (RESULT_HOLD_MS * 5) / 8; // two jobs pass the hold, one does not
    await harness.define({ name: 'spin', version: 1, source: '(ms) => { const end = performance.now() + ms; while (performance.now() < end); return ms; }' });
    await harness.jobs(['spin', 0, Array.from({ length: 8 }, () => [spin])]);
    const messages = await harness.resultsFor(8);
    const sizes = messages.map((m) => m.jobs.length);
    assert.ok(
      sizes.every((size) => size <= 2),
      `no message waits for more than two ${spin} ms jobs: ${sizes.join(', ')}`,
    );
    assert.deepEqual(
      messages.flatMap((m) => m.jobs),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
  });

  test('sends earlier results before a job with a timeout, and tells the server when it starts and ends', async () => {
    harness = await Harness.start();
    await harness.next();
    await harness.define({ name: 'id', version: 1, source: '(x) => x' });
    await harness.jobs(['id', 1, [[1]]], ['id', 2, [[2]]], ['id', 3, [[3]]], ['id', 4, [[4]], 5000]);
    const sequence: string[] = [];
    while (sequence.at(-1) !== 'ran 4') {
      const message = await harness.next();
      for (const job of message.jobs) sequence.push(`result ${job}`);
      if (message.head.t !== 'results') sequence.push(`${message.head.t} ${message.head.job} ${message.head.timeoutMs ?? ''}`.trim());
      if (message.head.t !== 'results') assert.equal(message.to, '', 'to the server itself');
    }
    assert.deepEqual(sequence, ['result 1', 'result 2', 'result 3', 'running 4 5000', 'result 4', 'ran 4']);
  });

  test('sends finished results when a job returns a promise, rather than hold them while it waits', async () => {
    harness = await Harness.start();
    await harness.next();
    await harness.define({ name: 'id', version: 1, source: '(x) => x' }, { name: 'later', version: 1, source: '(ms) => new Promise((resolve) => setTimeout(() => resolve(ms), ms))' });
    await harness.jobs(['id', 1, [[1], [2]]], ['later', 3, [[30]]]);
    const messages = await harness.resultsFor(3);
    const last = messages.pop()!;
    assert.deepEqual([last.jobs, last.values], [[3], [30]], 'the awaited result comes alone');
    assert.deepEqual(
      messages.flatMap((m) => m.jobs),
      [1, 2],
    );
  });

  test("captures each job's console output with its result, tagged with the job, and streams an awaiting job's output", async () => {
    harness = await Harness.start();
    await harness.next();
    await harness.define(
      { name: 'say', version: 1, source: '(text) => { console.log(text); process.stderr.write(`err ${text}`); return text.length; }' },
      { name: 'slowly', version: 1, source: 'async (ms) => { console.log("before"); await new Promise((r) => setTimeout(r, ms)); console.log("after"); return ms; }' },
    );
    await harness.jobs(['say', 1, [['one'], ['two']]]);
    const said = await harness.resultsFor(2);
    assert.deepEqual(
      said.flatMap((m) => m.values),
      [3, 3],
    );
    assert.deepEqual(
      said.flatMap((m) => m.out),
      [
        [1, 'stdout', 'one\n'],
        [1, 'stderr', 'err one'],
        [2, 'stdout', 'two\n'],
        [2, 'stderr', 'err two'],
      ],
    );

    await harness.jobs(['slowly', 3, [[50]]]);
    const streamed = await harness.next();
    assert.deepEqual([streamed.jobs, streamed.out], [[], [[3, 'stdout', 'before\n']]], 'output before the await goes while the job waits');
    const finished = await harness.next();
    assert.deepEqual([finished.jobs, finished.out], [[3], [[3, 'stdout', 'after\n']]]);
  });

  test('over its memory ceiling, sends what it holds, asks to be recycled and starts no further job', async () => {
    harness = await Harness.start({ maxRssBytes: 1 });
    await harness.next();
    await harness.define({ name: 'id', version: 1, source: '(x) => x' });
    await harness.jobs(['id', 1, [[1], [2], [3]]]);
    const results = await harness.next();
    assert.deepEqual(results.jobs, [1]);
    const recycle = await harness.next();
    assert.equal(recycle.to, '');
    assert.equal(recycle.head.t, 'recycle');
    assert.ok((recycle.head.rssMb as number) > 0);
    await harness.jobs(['id', 4, [[4]]]);
    await harness.nothingWithin(100);
  });

  test('preloads its --module before it says it is ready, and runs its functions as version 0', async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'tsgather-runtime-'));
    try {
      const module = join(dir, 'functions.mjs');
      writeFileSync(module, 'export function negate(x) { return -x; }\n');
      harness = await Harness.start({ module });
      assert.deepEqual((await harness.next()).head.functions, ['negate']);
      await harness.jobs(['negate', 1, [[5]]]);
      const [results] = await harness.resultsFor(1);
      assert.deepEqual([results!.values, results!.versions], [[-5], [0]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
