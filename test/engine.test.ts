/** The engine on its embedded local cluster: real controller child, real server, real workers. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { inspect } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { spawnScatterGather, RemoteError, SerializationError, type ScatterGather, type JobOutput, type JobItem, type SpawnOptions } from '../caller/index.js';
import { MAX_MESSAGE_BYTES } from '../protocol/index.js';
import { alive, descendantsRunning, histogramSource, waitUntil } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

describe('embedded local cluster', () => {
  let sg: ScatterGather;

  before(async () => {
    sg = await spawnScatterGather([], { echo: false });
    await sg.define('histogram', histogramSource);
    await sg.define('noop', () => null);
    await sg.define('sleep', (ms: number) => new Promise((resolve) => setTimeout(() => resolve(ms), ms)));
  });
  after(() => sg.close());

  test('starts one worker per core and runs 100 histogram jobs, each tagged with id, worker, server and timings', async () => {
    const status = await sg.status();
    assert.equal(status.workers, os.availableParallelism());
    const ids = sg.addJob(
      'histogram',
      Array.from({ length: 100 }, () => [[1000], { distribution: 'normal', loc: 1, scale: 1, bins: 10 }]),
    );
    assert.equal(ids.length, 100);
    const results = await sg.waitForResult({ all: true });
    assert.deepEqual(
      results.map((r) => r.id).sort((a, b) => a - b),
      ids,
    );
    for (const result of results) {
      assert.equal(result.ok, true, String(result.error));
      const { counts } = result.value as { counts: number[] };
      assert.equal(counts.length, 10);
      assert.equal(
        counts.reduce((a, b) => a + b, 0),
        1000,
      );
      assert.equal(result.fn, 'histogram');
      assert.ok(result.worker.server.length > 0 && result.worker.host === os.hostname());
      assert.ok(result.worker.pid > 0 && result.worker.pid !== process.pid);
      const t = result.timings;
      assert.ok(t.queuedAt <= t.dispatchedAt && t.dispatchedAt <= t.startedAt + 1 && t.startedAt <= t.finishedAt, JSON.stringify(t));
      // The run the worker measured fits between its start and the result's arrival (one clock: same host).
      assert.ok(t.startedAt + t.runMs <= t.finishedAt + 1, JSON.stringify(t));
      assert.equal(t.totalMs, t.finishedAt - t.queuedAt);
    }
    // Timings are read from the message's numbers when asked for; JSON and console.log show them as a plain result's.
    const [first] = results;
    const plain = JSON.parse(JSON.stringify(first));
    assert.deepEqual(Object.keys(plain), ['id', 'ok', 'value', 'fn', 'version', 'attempts', 'worker', 'timings']);
    assert.deepEqual(plain.timings, first!.timings);
    assert.match(inspect(first), /^\{\n {2}id: \d+,\n {2}ok: true,[\s\S]*timings: \{\n {4}queuedAt: \d+,/);
    assert.equal(new Set(results.map((r) => r.worker.pid)).size, os.availableParallelism(), 'every worker took part');
  });

  test('poll never waits; addJob while jobs run is fine; waitForResult with a timeout returns what it has', async () => {
    const slow = sg.addJob('sleep', [[[300]]]);
    assert.deepEqual(sg.poll(), [], 'nothing has arrived yet, and poll said so at once');
    const early = await sg.waitForResult({ timeout: 20 });
    assert.deepEqual(early, [], 'timed out with nothing');
    const quick = sg.addJob('sleep', [[[1]], [[2]]]);
    const got = new Map<number, unknown>();
    while (got.size < 3) for (const r of await sg.waitForResult()) got.set(r.id, r.value);
    assert.deepEqual(
      [...got.keys()].sort((a, b) => a - b),
      [...slow, ...quick],
    );
    assert.equal(got.get(slow[0]!), 300);
    assert.equal(sg.outstanding, 0);
  });

  test('definitions are versioned: a redefinition under the same name gets a new version', async () => {
    const v1 = await sg.define('greet', (name: string) => `hello ${name}`);
    const first = await sg.mapResults('greet', [[['a']]]);
    const v2 = await sg.define('greet', (name: string) => `bonjour ${name}`);
    const second = await sg.mapResults('greet', [[['b']]]);
    assert.equal(v2, v1 + 1);
    assert.deepEqual([first[0]!.value, first[0]!.version], ['hello a', v1]);
    assert.deepEqual([second[0]!.value, second[0]!.version], ['bonjour b', v2]);
  });

  test('a definition whose source is far longer than a message head (about 200 KB) is defined and runs', async () => {
    const table = Array.from({ length: 30_000 }, (_, i) => i * 7);
    assert.equal(await sg.define('lookup', `(i) => ${JSON.stringify(table)}[i]`), 1);
    assert.equal(await sg.submit('lookup', [29_999]), 209_993);
  });

  test('definitions take several source forms, and kwargs arrive as the last argument', async () => {
    await sg.define('declared', 'function declared(a, b, opts) { return [a, b, opts.k]; }');
    await sg.define('method', 'method(x, { scale = 2 } = {}) { return x * scale; }');
    await sg.define('asyncFn', async (x: number) => x + 1);
    assert.deepEqual(await sg.submit('declared', [1, 2], { k: 'v' }), [1, 2, 'v']);
    assert.deepEqual(await sg.map('method', [[[3]], [[3], { scale: 5 }]]), [6, 15]);
    // An undefined kwargs is no kwargs (the item is trimmed to [args], so it still travels as plain JSON), and the list given is left as it was.
    const items: JobItem[] = [[[4]], [[4], undefined], [[4], { scale: 3 }]];
    assert.deepEqual(await sg.map('declared', [[[1, 2, { k: 0 }]], [[1, 2, { k: 1 }], undefined]]), [
      [1, 2, 0],
      [1, 2, 1],
    ]);
    assert.deepEqual(await sg.map('method', items), [8, 8, 12]);
    assert.equal(items[1]!.length, 2);
    assert.equal(await sg.submit('asyncFn', [41]), 42);
  });

  test('a job that throws comes back as an error with the remote name, message and stack; others are unaffected', async () => {
    await sg.define('maybeThrow', (n: number) => {
      if (n === 2) throw new RangeError(`bad n ${n}`);
      return n;
    });
    const results = await sg.mapResults('maybeThrow', [[[1]], [[2]], [[3]]]);
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, false, true],
    );
    const error = results[1]!.error!;
    assert.ok(error instanceof RemoteError);
    assert.equal(error.name, 'RangeError');
    assert.equal(error.message, 'bad n 2');
    assert.match(error.stack ?? '', /RangeError: bad n 2\n\s+at /);
    await assert.rejects(sg.submit('maybeThrow', [2]), /bad n 2/);
  });

  test('map waits for every job, then rejects with the failure earliest in input order, even when a later one failed first', async () => {
    await sg.define('failAfter', async (n: number, ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      throw new Error(`failed ${n}`);
    });
    const items: JobItem[] = [[[1, 150]], [[2, 0]], [[3, 0]]];
    const finished = (await sg.mapResults('failAfter', items)).map((r) => r.timings.finishedAt);
    assert.ok(finished[1]! < finished[0]!, 'job 2 failed before job 1 on the other worker');
    await assert.rejects(sg.map('failAfter', items), (error: Error) => error instanceof RemoteError && error.message === 'failed 1');
  });

  test('calling an unknown name gives a clear error result', async () => {
    const [result] = await sg.mapResults('nope', [[[]]]);
    assert.equal(result!.ok, false);
    assert.equal(result!.error!.name, 'UnknownFunctionError');
    assert.match(result!.error!.message, /no function named 'nope'.*known: .*histogram/);
  });

  test('console output inside a job never corrupts the protocol and reaches the caller tagged with job and worker', async () => {
    await sg.define('chatty', (n: number) => {
      console.log(`line one of ${n}\nline two`);
      console.error('to stderr');
      process.stdout.write('{"t":"results","w":1}\n'); // looks like protocol; must stay text
      return n * 2;
    });
    const outputs: JobOutput[] = [];
    const listener = (o: JobOutput) => outputs.push(o);
    sg.on('output', listener);
    const results = await sg.mapResults(
      'chatty',
      Array.from({ length: 20 }, (_, i) => [[i]] as [number[]]),
    );
    sg.off('output', listener);
    assert.deepEqual(
      results.map((r) => r.value),
      Array.from({ length: 20 }, (_, i) => i * 2),
    );
    results.forEach((result, i) => {
      assert.equal(result.output, `line one of ${i}\nline two\nto stderr\n{"t":"results","w":1}\n`);
      const mine = outputs.filter((o) => o.job === result.id);
      assert.deepEqual(
        mine.map((o) => o.stream),
        ['stdout', 'stderr', 'stdout'],
      );
      assert.ok(mine.every((o) => o.worker === result.worker.id && o.host === result.worker.host));
    });
  });

  test('output a job leaves behind after it returned still reaches the caller, tagged with its worker', async () => {
    await sg.define('later', () => {
      setTimeout(() => console.log('printed after return'), 5);
      return 'ok';
    });
    const seen = new Promise<JobOutput>((resolve) => {
      const listener = (o: JobOutput) => {
        if (o.text.includes('printed after return')) {
          sg.off('output', listener);
          resolve(o);
        }
      };
      sg.on('output', listener);
    });
    assert.equal(await sg.submit('later'), 'ok');
    const output = await seen;
    assert.ok(output.worker > 0);
  });

  test('output outside a job longer than a message head (160 KB) reaches the caller whole', async () => {
    const line = `${'z'.repeat(79)}\n`;
    await sg.define('chatty', (text: string, times: number) => {
      setTimeout(() => process.stdout.write(text.repeat(times)), 5);
      return 'ok';
    });
    let received = '';
    const whole = new Promise<void>((resolve) => {
      const listener = (o: JobOutput) => {
        if (o.job === null && o.stream === 'stdout' && /^[z\n]+$/.test(o.text)) received += o.text;
        if (received.length >= 2000 * line.length) {
          sg.off('output', listener);
          resolve();
        }
      };
      sg.on('output', listener);
    });
    assert.equal(await sg.submit('chatty', [line, 2000]), 'ok');
    await whole;
    assert.equal(received, line.repeat(2000));
  });

  test('a status longer than a message head still arrives (300 long-named definitions stand in for many servers and workers)', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `${'n'.repeat(250)}${i}`);
    for (const name of names) await sg.define(name, () => null);
    const status = await sg.status();
    const listed = new Set((status.definitions as Array<{ name: string }>).map((definition) => definition.name));
    assert.ok(names.every((name) => listed.has(name)));
  });

  test('a function name over 256 characters is refused by define and addJob, since names travel in message heads', async () => {
    const long = 'f'.repeat(257);
    await assert.rejects(
      sg.define(long, () => null),
      /define\(\): a function name is at most 256 characters \(got 257\)/,
    );
    assert.throws(() => sg.addJob(long, [[[]]]), /addJob\(\): a function name is at most 256 characters \(got 257\)/);
  });

  test('an argument that cannot travel makes addJob throw before anything is queued', () => {
    const before = sg.outstanding;
    assert.throws(
      () => sg.addJob('noop', [[[1]], [[{ callback: () => 1 }]]]),
      (error: Error) => error instanceof SerializationError && /job 1\[0\]\[0\]\.callback is a function/.test(error.message),
    );
    assert.throws(() => sg.addJob('noop', [[[Symbol('x')]]]), /symbol/);
    assert.throws(() => sg.addJob('noop', [[1, 2] as never]), /item 0 must be \[args array, kwargs object\?\]/);
    // Past ZeroMQ's frame limit the link would drop the connection and the message: refused instead (the pages are never touched).
    assert.throws(
      () => sg.addJob('noop', [[[1]], [[new Uint8Array(MAX_MESSAGE_BYTES + 1)]]]),
      (error: Error) => error instanceof SerializationError && /job 1's binary value is 1024 MB encoded; one frame carries at most 1024 MB/.test(error.message),
    );
    assert.equal(sg.outstanding, before, 'nothing was queued');
  });

  test("a result with a frame past the links' limit comes back as a SerializationError, and the worker carries on", async () => {
    // Returned, never written to: the gigabyte's pages are never touched.
    await sg.define('huge', (bytes: number) => new Uint8Array(bytes));
    const [result] = await sg.mapResults('huge', [[[MAX_MESSAGE_BYTES + 1]]]);
    assert.equal(result!.ok, false);
    assert.equal(result!.error!.name, 'SerializationError');
    assert.match(result!.error!.message, new RegExp(`the result of job ${result!.id} has a 1024 MB frame; one frame carries at most 1024 MB`));
    assert.equal(await sg.submit('huge', [3]).then((bytes) => (bytes as Uint8Array).length), 3, 'the workers carry on');
  });

  test('binary values travel both ways as typed arrays', async () => {
    await sg.define('scale', (xs: Float64Array, k: number) => xs.map((x) => x * k));
    const input = Float64Array.from({ length: 100_000 }, (_, i) => i);
    const output = await sg.submit<Float64Array>('scale', [input, 2]);
    assert.ok(output instanceof Float64Array);
    assert.equal(output.length, input.length);
    assert.equal(output[99_999], 199_998);
  });

  test('once submit or map resolves, the engine holds no reference to the results or their payloads', async () => {
    await sg.define('scale', (xs: Float64Array, k: number) => xs.map((x) => x * k));
    const submitted = new WeakRef(await sg.submit<Float64Array>('scale', [new Float64Array(1 << 20), 2]));
    const mapped = new WeakRef((await sg.map<Float64Array>('scale', [[[new Float64Array(1 << 20), 3]]]))[0]!);
    // WeakRefs hold their targets until the current job ends; collect after it.
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    assert.equal(submitted.deref(), undefined, "submit's result was still referenced after it resolved");
    assert.equal(mapped.deref(), undefined, "map's result was still referenced after it resolved");
  });

  test('10,000 no-op jobs complete, with map keeping input order and results() yielding each once', async () => {
    const ids = sg.addJob(
      'noop',
      Array.from({ length: 10_000 }, () => [[]]),
    );
    const seen = new Set<number>();
    for await (const result of sg.results()) {
      assert.equal(result.ok, true);
      assert.ok(!seen.has(result.id));
      seen.add(result.id);
    }
    assert.equal(seen.size, ids.length);
    await sg.define('identity', (x: number) => x);
    const values = await sg.map<number>(
      'identity',
      Array.from({ length: 5_000 }, (_, i) => [[i]] as [number[]]),
    );
    assert.deepEqual(
      values,
      Array.from({ length: 5_000 }, (_, i) => i),
    );
  });

  test('refresh while jobs are queued and running: every job gets exactly one result, and definitions reach the new workers', async () => {
    const before = (await sg.status()).servers as Array<{ workers: Array<{ pid: number }> }>;
    const oldPids = new Set(before.flatMap((s) => s.workers.map((w) => w.pid)));
    const ids = sg.addJob(
      'sleep',
      Array.from({ length: 60 }, () => [[5]]),
    );
    const firstResults = await sg.waitForResult();
    await sg.command('refresh');
    const rest = await sg.waitForResult({ all: true });
    const all = [...firstResults, ...rest].map((r) => r.id).sort((a, b) => a - b);
    assert.deepEqual(all, ids, 'each job exactly once');
    const after = (await sg.status()).servers as Array<{ workers: Array<{ pid: number }> }>;
    const newPids = after.flatMap((s) => s.workers.map((w) => w.pid));
    assert.equal(newPids.length, os.availableParallelism());
    assert.ok(
      newPids.every((pid) => !oldPids.has(pid)),
      'every worker was reforked',
    );
    assert.equal(await sg.submit('identity', [7]), 7, 'definitions shipped before refresh reach reforked workers');
  });
});

describe('results while a worker is busy', () => {
  test("a finished job's result leaves its worker while the worker's later jobs run", async () => {
    const sg = await spawnScatterGather([], { workers: 1, echo: false });
    try {
      const marker = `${os.tmpdir()}/tsg-marker-${process.pid}-${Date.now()}`;
      // 'wait' spins without yielding until the marker exists; this test writes it only once it holds the results
      // of the jobs queued ahead of it on the same worker. A worker holds results while it has jobs queued,
      // for up to 4 ms: 'busy' runs past that, so the results of 'quick' and 'busy' are due before 'wait' starts.
      await sg.define('step', (mode: string, path?: string) => {
        if (mode === 'busy') for (const until = performance.now() + 10; performance.now() < until; );
        if (mode !== 'wait') return mode;
        const fs = process.getBuiltinModule('node:fs');
        for (const until = Date.now() + 20_000; Date.now() < until; ) if (fs.existsSync(path!)) return 'saw the marker';
        return 'gave up: results of earlier jobs never left the worker while this one ran';
      });
      // Quick runs first, so the controller sends the next three to the worker in one batch.
      await sg.map(
        'step',
        Array.from({ length: 50 }, () => [['quick']] as [unknown[]]),
      );
      sg.addJob('step', [[['quick']], [['busy']], [['wait', marker]]]);
      const ahead: unknown[] = [];
      while (ahead.length < 2) for (const result of await sg.waitForResult()) ahead.push(result.value);
      assert.deepEqual(ahead.sort(), ['busy', 'quick']);
      writeFileSync(marker, '');
      const rest = await sg.waitForResult({ all: true });
      rmSync(marker, { force: true });
      assert.deepEqual(
        rest.map((r) => r.value),
        ['saw the marker'],
      );
    } finally {
      await sg.close();
    }
  });
});

describe('lifecycle', () => {
  test("the controller and the workers start with a young generation of at least 16 MB, not V8's 1 MB", async () => {
    const fresh = await spawnScatterGather([], { workers: 2, echo: false });
    try {
      await fresh.define('youngGeneration', async () => (await import('node:v8')).getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')!.space_size);
      const sizes = await fresh.map<number>(
        'youngGeneration',
        Array.from({ length: 8 }, () => [[]]),
      );
      assert.ok(
        sizes.every((size) => size >= 16 * 1024 * 1024),
        `young generations of ${sizes.join(', ')} bytes`,
      );
      const controllerArgs = readFileSync(`/proc/${fresh.controllerPid}/cmdline`, 'utf8').split('\0');
      assert.ok(controllerArgs.includes('--min-semi-space-size=16'), `controller started with ${controllerArgs.join(' ')}`);
    } finally {
      await fresh.close();
    }
  });

  test("command('die') stops the controller and its workers; later calls fail clearly", async () => {
    const sg = await spawnScatterGather([], { workers: 1, echo: false });
    const status = await sg.status();
    const pids = (status.servers as Array<{ workers: Array<{ pid: number }> }>).flatMap((s) => s.workers.map((w) => w.pid));
    const exit = new Promise<{ code: number | null; expected: boolean }>((resolve) => sg.once('exit', resolve));
    // Two at once (a kernel shutting down while a cell closes, say): both resolve, one die is sent.
    await Promise.all([sg.command('die'), sg.close()]);
    assert.deepEqual(await exit, { code: 0, signal: null, expected: true }, 'a die is an expected exit, not a crash');
    for (const pid of pids) assert.equal(alive(pid), false, 'worker process is gone');
    assert.throws(() => sg.addJob('noop', [[[]]]), /controller process exited/);
    await assert.rejects(sg.status(), /controller process exited/);
    await sg.close();
  });

  test('a spawn option out of range is refused before anything starts, saying what it takes', async () => {
    // Before these checks, workers: 0 or 1.5 waited out the connect timeout (15 s) and workers: -2 started a
    // cluster with no workers whose jobs waited for ever.
    const refused: Array<[SpawnOptions, RegExp]> = [
      [{ workers: 0 }, /^workers must be a whole number ≥ 1 \(got 0\)$/],
      [{ workers: 1.5 }, /^workers must be a whole number ≥ 1 \(got 1\.5\)$/],
      [{ workers: -2 }, /^workers must be a whole number ≥ 1 \(got -2\)$/],
      [{ workers: 'two' as unknown as number }, /^workers must be a whole number ≥ 1 \(got 'two'\)$/],
      [{ spareWorkers: -1 }, /^spareWorkers must be a whole number ≥ 0 \(got -1\)$/],
      [{ retries: 0.5 }, /^retries must be a whole number ≥ 0/],
      [{ maxQueued: 0 }, /^maxQueued must be a whole number ≥ 1/],
      [{ heartbeatMs: 0 }, /^heartbeatMs must be a number of milliseconds > 0 \(got 0\)$/],
      [{ connectTimeoutMs: Number.NaN }, /^connectTimeoutMs must be a number of milliseconds > 0 \(got NaN\)$/],
      [{ timeoutMs: -5 }, /^timeoutMs must be a number of milliseconds ≥ 0 \(got -5\)$/],
      [{ workerHeapMb: -1 }, /^workerHeapMb must be a number of megabytes > 0/],
    ];
    const controllers = () => descendantsRunning('embedded/controller-main.js').length;
    const before = controllers();
    for (const [options, message] of refused) {
      await assert.rejects(spawnScatterGather([], { ...options, echo: false }), (error: Error) => error instanceof TypeError && message.test(error.message), JSON.stringify(options));
    }
    assert.equal(controllers(), before, 'no controller child was forked');
  });

  test('an embedded cluster whose workers cannot start fails spawnScatterGather with their reason', async () => {
    // A 1 MB V8 heap cannot even load Node: every worker dies before it is ready.
    await assert.rejects(spawnScatterGather([], { workers: 2, workerHeapMb: 1, echo: false }), /embedded compute server could not start: workers died 5 times in a row before becoming ready/);
  });

  test('a controller that crashes makes pending waits reject at once with a clear error', async () => {
    const sg = await spawnScatterGather([], { workers: 1, echo: false });
    await sg.define('sleep', (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)));
    const waiting = sg.submit('sleep', [60_000]);
    sg.addJob('sleep', [[[60_000]]]);
    const all = sg.waitForResult({ all: true });
    const controllerPid = (sg as unknown as { child: { pid: number } }).child.pid;
    const status = await sg.status();
    const workerPids = (status.servers as Array<{ workers: Array<{ pid: number }> }>).flatMap((s) => s.workers.map((w) => w.pid));
    process.kill(controllerPid, 'SIGKILL');
    await assert.rejects(waiting, (error: Error) => error.name === 'ControllerExitedError' && /spawn a new one/.test(error.message));
    await assert.rejects(all, /controller process exited/);
    // The embedded server lived in the controller process: its workers see their stdin end and go.
    for (const pid of workerPids) await waitUntil(() => !alive(pid), 5000, `worker ${pid} to end with its controller`);
  });
});
