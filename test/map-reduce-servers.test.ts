/**
 * sg.mapReduce with `onServers` (a tree reduction): each worker folds the values of its jobs and
 * sends partials, which the caller combines. Whatever befalls the workers and servers mid-call (a
 * worker killed, a refresh, a server joining or vanishing), every job counts exactly once: the
 * total is the one the caller-side fold gives.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CaptureError, imported, spawnScatterGather, type JobOutput, type ScatterGather } from '../caller/index.js';
import { runNotebook } from '../kernel/run-notebook.js';
import { codeNotebook, nextEvent, startServer, type RunningServer } from './helpers.js';

const items = (n: number) => Array.from({ length: n }, (_, i) => [[i]] as [number[]]);
const add = (total: number, value: number) => total + value;
/** 0 + 1 + ... + (n - 1). */
const triangle = (n: number) => ((n - 1) * n) / 2;

describe('mapReduce onServers', () => {
  let sg: ScatterGather;
  const servers: RunningServer[] = [];

  before(async () => {
    sg = await spawnScatterGather([], { workers: 2, listen: 'tcp://127.0.0.1:*', echo: false, progress: false, heartbeatMs: 200, heartbeatTimeoutMs: 1000, timeoutRetries: 1 });
    await sg.define('square', (x: number) => x * x);
    await sg.define('histogram', (i: number) => {
      const h = new Float64Array(12_800); // 100 KB
      h[i % 12_800] = 1;
      h[(i * 7919) % 12_800]! += 0.5;
      return h;
    });
    await sg.define('fragile', (x: number) => {
      if (x === 7 || x === 900) throw new RangeError(`no ${x}`);
      return x;
    });
    // Job `stuck` spins past its timeout the first time it runs (the file says it has), then returns its number.
    await sg.define('stuckOnce', async (i: number, stuck: number, marker: string) => {
      const fs = await import('node:fs');
      if (i === stuck && !fs.existsSync(marker)) {
        fs.writeFileSync(marker, '');
        for (;;);
      }
      return i;
    });
    // Says where it runs, then takes a few ms: the tests below act once a worker has folded some.
    await sg.define('tick', async (i: number) => {
      console.log(`tick ${process.pid}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
      return i;
    });
  });
  after(async () => {
    await sg.close();
    await Promise.all(servers.map((server) => server.stop()));
  });

  /** Resolves with the pid of the first worker to print `count` ticks on `server` (any, when not given). */
  function ticking(count: number, server?: string): Promise<number> {
    const seen = new Map<number, number>();
    return new Promise((resolve) => {
      const listener = (output: JobOutput) => {
        if (server && output.server !== server) return;
        for (const match of output.text.matchAll(/tick (\d+)/g)) {
          const pid = Number(match[1]);
          seen.set(pid, (seen.get(pid) ?? 0) + 1);
          if (seen.get(pid) === count) {
            sg.off('output', listener);
            resolve(pid);
          }
        }
      };
      sg.on('output', listener);
    });
  }

  /** Starts a server named `name` with `workers` workers (and these flags), connects it, and waits for its first worker. */
  async function joinServer(name: string, workers: number, ...flags: string[]): Promise<RunningServer> {
    const server = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', String(workers), '--spare-workers', '0', '--name', name, ...flags, '--log-level', 'error']);
    servers.push(server);
    const up = nextEvent(sg, 'worker-up', (detail) => detail.server === name);
    await sg.connect(server.endpoint);
    await up;
    return server;
  }

  test('gives the caller-side answer, a sum and a Float64Array histogram, with far fewer results to the caller', async () => {
    assert.equal(await sg.mapReduce('square', items(10_000), add, 0, { onServers: true }), await sg.mapReduce('square', items(10_000), add, 0));
    const addInto = (into: Float64Array, h: Float64Array) => {
      for (let k = 0; k < into.length; k++) into[k]! += h[k]!;
      return into;
    };
    const n = 2000;
    const local = await sg.mapReduce('histogram', items(n), addInto, new Float64Array(12_800));
    const before = sg.progress;
    const zeros = new Float64Array(12_800);
    // No flush by age: a worker sends a partial when its queue has had no job of the call for 20 ms,
    // which a busy machine may cause now and then, so the bound is loose: far fewer than one a job.
    const folded = await sg.mapReduce('histogram', items(n), addInto, zeros, { onServers: true, combine: addInto, foldFlushMs: 600_000 });
    const partials = sg.progress.partials! - before.partials!;
    assert.deepEqual(folded, local);
    assert.equal(sg.progress.done - before.done, n, 'every job counts as done once');
    assert.ok(partials >= 1 && partials <= n / 4, `${partials} partials for ${n} jobs`);
    assert.equal(await sg.mapReduce('square', [], add, 42, { onServers: true }), 42, 'no items: the initial value');
    const matches = await sg.mapReduce<number, number>('square', items(3000), (count, value, index) => count + (value === index * index ? 1 : 1e9), 0, { onServers: true, combine: add });
    assert.equal(matches, 3000, "the reducer gets each value's index in the items");
    const status = await sg.status();
    assert.ok(!status.shared.some((value) => value.name.startsWith('mapReduce.fold.')), 'the initial value is dropped from the workers once the call is done');
  });

  test('items from an async generator: read as room comes, folded on the servers, each index once', async () => {
    async function* squares(n: number) {
      for (let i = 0; i < n; i++) yield [[i]] as [number[]];
    }
    const n = 5_000; // several batches of 1,024
    assert.equal(await sg.mapReduce('square', squares(n), add, 0, { onServers: true }), ((n - 1) * n * (2 * n - 1)) / 6);
    const matches = await sg.mapReduce<number, number>('square', squares(n), (count, value, index) => count + (value === index * index ? 1 : 1e9), 0, { onServers: true, combine: add });
    assert.equal(matches, n, "each value's index among all the items, across batches");
    assert.equal(await sg.mapReduce('square', squares(0), add, 42, { onServers: true }), 42, 'no items: the initial value');
  });

  test("a call's partials go once its jobs stop coming, while the workers stay busy with other jobs", async () => {
    const busy = sg.map('tick', items(3000));
    await ticking(20);
    const folded = sg.mapReduce('square', items(300), add, 0, { onServers: true, foldFlushMs: 60_000 });
    const first = await Promise.race([folded.then(() => 'fold'), busy.then(() => 'busy')]);
    assert.equal(first, 'fold', 'the fold did not wait for the workers to be idle, nor for foldFlushMs');
    assert.equal(await folded, 8_955_050);
    assert.equal((await busy).length, 3000);
  });

  test('a reducer that throws on a worker rejects the call with its error, once every job is answered', async () => {
    const before = sg.progress;
    await assert.rejects(
      sg.mapReduce<number, number>(
        'square',
        items(1000),
        (total, value) => {
          if (value === 777 * 777) throw new RangeError('no 777');
          return total + value;
        },
        0,
        { onServers: true },
      ),
      /no 777/,
    );
    const after = sg.progress;
    assert.equal(after.done + after.failed - before.done - before.failed, 1000, 'every job answered, none twice');
    assert.ok(after.failed > before.failed);
    assert.equal(await sg.mapReduce('square', items(1000), add, 0, { onServers: true }), 332_833_500, 'the pool reduces on after it');
  });

  test("a job's failure rejects the call with it, as the caller-side fold does; the jobs folded before it count", async () => {
    const before = sg.progress;
    await assert.rejects(sg.mapReduce('fragile', items(2000), add, 0, { onServers: true }), /no 7/);
    const after = sg.progress;
    assert.equal(after.failed - before.failed, 2);
    assert.equal(after.done - before.done, 1998);
  });

  test('a job that runs past its timeout: its worker is killed with its accumulator, and the total is still exact', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'tsgather-fold-')), 'stuck');
    const n = 2000;
    const timedOut = (await sg.status()).timedOut;
    const total = await sg.mapReduce(
      'stuckOnce',
      Array.from({ length: n }, (_, i) => [[i, 1500, marker]]),
      add,
      0,
      { onServers: true, timeoutMs: 500, foldFlushMs: 60_000 },
    );
    assert.equal(total, triangle(n));
    assert.equal((await sg.status()).timedOut - timedOut, 1, 'job 1500 timed out once');
  });

  test('a reducer that imports a module waits for it on each worker; one that cannot be imported fails the jobs saying so', async () => {
    const util = await import('node:util');
    const withUtil = { with: { util: imported('node:util') } };
    assert.equal(await sg.mapReduce<number, number>('square', items(1000), (sum, value) => sum + (util.isDeepStrictEqual(value, value) ? value : 0), 0, { onServers: true, ...withUtil }), 332_833_500);
    await assert.rejects(
      sg.mapReduce<number, number>('square', items(100), (sum, value) => sum + value + (missing ? 0 : 1), 0, { onServers: true, with: { missing: imported('tsgather-no-such-module') } }),
      /tsgather-no-such-module/,
    );
  });

  test('a reducer that cannot travel is refused at the call with a CaptureError, as are bad options, and nothing is queued', async () => {
    const total = sg.progress.total;
    const nowhere = new (class Connection {})();
    await assert.rejects(
      sg.mapReduce<number, number>('square', items(10), (sum, value) => sum + value + (nowhere ? 0 : 1), 0, { onServers: true, with: { nowhere } }),
      (error: Error) => error instanceof CaptureError && /^mapReduce\('square', …, \{ onServers: true \}\): 'nowhere' \(used at line 1 of the reducer.*is a Connection/.test(error.message),
    );
    await assert.rejects(
      sg.mapReduce<number, number>('square', items(10), (sum, value) => sum + value + (undefinedAnywhere as number), 0, { onServers: true }),
      CaptureError,
    );
    await assert.rejects(sg.mapReduce('square', items(10), add, 0, { onServers: true, foldFlushMs: -1 }), /foldFlushMs' must be a number of ms ≥ 0/);
    await assert.rejects(sg.mapReduce('square', items(10), add, 0, { onServers: true, combine: 'add' as never }), /'combine' must be a function/);
    assert.equal(sg.progress.total, total);
  });

  test('a worker killed with SIGKILL mid-call: the jobs it had folded run again, each counted once', async () => {
    const n = 3000;
    const victim = ticking(100);
    const call = sg.mapReduce('tick', items(n), add, 0, { onServers: true, foldFlushMs: 60_000, timeoutMs: 30_000 });
    const pid = await victim;
    const worker = (await sg.status()).servers.flatMap((server) => server.workers ?? []).find((w) => w.pid === pid);
    assert.ok(worker, 'the worker is in status()');
    const retried = (await sg.status()).retried;
    const down = nextEvent(sg, 'worker-down', (detail) => detail.pid === pid);
    process.kill(pid, 'SIGKILL');
    assert.equal((await down).cause, 'crash');
    assert.equal(await call, triangle(n));
    assert.ok((await sg.status()).retried - retried > 1, 'the jobs it had folded were rerun');
  });

  test('a refresh mid-call: each worker sends its partial before it goes', async () => {
    const n = 3000;
    const started = ticking(100);
    const before = sg.progress;
    const call = sg.mapReduce('tick', items(n), add, 0, { onServers: true, foldFlushMs: 60_000 });
    await started;
    await sg.command('refresh');
    assert.equal(await call, triangle(n));
    assert.ok(sg.progress.partials! - before.partials! >= 2, 'partials came before the refresh and after');
  });

  test('a server that dials in mid-call takes a share, and its partials count', async () => {
    const n = 4000;
    const joined = nextEvent(sg, 'worker-up', (detail) => detail.server === 'late');
    const before = sg.progress;
    const call = sg.mapReduce('tick', items(n), add, 0, { onServers: true });
    await ticking(50);
    const ranThere = ticking(20, 'late');
    servers.push(await startServer(['--connect', sg.listenAddress!, '--workers', '1', '--spare-workers', '0', '--name', 'late', '--log-level', 'error'], { waitForEndpoint: false }));
    await joined;
    await ranThere;
    assert.equal(await call, triangle(n));
    assert.equal(sg.progress.done - before.done, n);
  });

  test('a server that vanishes mid-call: its folded jobs run again elsewhere', async () => {
    const doomed = await joinServer('doomed', 2);
    const n = 4000;
    const retried = (await sg.status()).retried;
    const busy = ticking(60, 'doomed');
    const call = sg.mapReduce('tick', items(n), add, 0, { onServers: true, foldFlushMs: 60_000 });
    await busy;
    const lost = nextEvent(sg, 'server-down', (detail) => detail.server === 'doomed');
    await doomed.stop('SIGKILL');
    await lost;
    assert.equal(await call, triangle(n));
    assert.ok((await sg.status()).retried > retried, 'the jobs its workers had folded ran again');
  });

  test('a server stopped mid-call sends its partials as its workers drain: no folded job runs again', async () => {
    const leaving = await joinServer('leaving', 2);
    const n = 4000;
    const retried = (await sg.status()).retried;
    const busy = ticking(60, 'leaving');
    const call = sg.mapReduce('tick', items(n), add, 0, { onServers: true, foldFlushMs: 60_000 });
    await busy;
    const gone = nextEvent(sg, 'server-down', (detail) => detail.server === 'leaving');
    await leaving.stop('SIGTERM');
    await gone;
    assert.equal(await call, triangle(n));
    assert.equal((await sg.status()).retried - retried, 0, 'every job it had folded came back in a partial');
  });

  test('labels: the fold runs only on servers carrying them, and the reducer is defined only there', async () => {
    await joinServer('tagged', 1, '--label', 'fold');
    const where = new Set<string>();
    const listener = (output: JobOutput) => where.add(output.server);
    sg.on('output', listener);
    const n = 500;
    assert.equal(await sg.mapReduce('tick', items(n), add, 0, { onServers: true, labels: ['fold'] }), triangle(n));
    sg.off('output', listener);
    assert.deepEqual([...where], ['tagged']);
  });
});

test('in a notebook, the reducer takes the names it uses from the cells', { timeout: 120_000 }, async () => {
  const input = join(mkdtempSync(join(tmpdir(), 'tsgather-fold-nb-')), 'fold.ipynb');
  writeFileSync(
    input,
    JSON.stringify(
      codeNotebook(
        'const sg = await spawnScatterGather([], { workers: 2 });\nawait sg.define("square", (x: number) => x * x);\nconst weight = 3;',
        'await sg.mapReduce<number, number>("square", Array.from({ length: 1000 }, (_, i) => [[i]]), (s, v) => s + weight * v, 0, { onServers: true, combine: (a, b) => a + b })',
        'await sg.close();',
      ),
    ),
  );
  const result = await runNotebook(input);
  assert.deepEqual(result.errors, []);
  const cells = (JSON.parse(readFileSync(result.outputPath, 'utf8')) as { cells: Array<{ outputs: Array<{ output_type: string; data?: Record<string, string> }> }> }).cells;
  const value = cells[1]!.outputs.find((output) => output.output_type === 'execute_result');
  assert.equal(value?.data?.['text/plain'], String(3 * 332_833_500));
});

declare const undefinedAnywhere: unknown;
declare const missing: unknown;
