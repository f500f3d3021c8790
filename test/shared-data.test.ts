/**
 * Data pushed once to every worker (sg.push): jobs read it as `shared.name`; it stays on each
 * worker across jobs, reaches refreshed workers and servers that join later without the caller
 * sending it again, is kept apart per session on a shared server, and goes with sg.drop.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { startServer, type RunningServer } from './helpers.js';

const items = (n: number) => Array.from({ length: n }, (_, i) => [[i]] as [number[]]);

/** A job that reads the pushed array, and marks it so that a value sent again would show. */
const READ = `(i) => {
  const table = shared.table;
  if (!table) return { missing: true };
  table.mark ??= process.pid + '-' + Math.random();
  return { mark: table.mark, pid: process.pid, sum: table[i] + table[table.length - 1 - i], length: table.length };
}`;

describe('sg.push on the embedded cluster', () => {
  let sg: ScatterGather;
  before(async () => {
    sg = await spawnScatterGather([], { workers: 2, echo: false, progress: false });
    await sg.define('read', READ);
  });
  after(() => sg.close());

  test('every job reads the value pushed once; each worker holds one copy across all its jobs', async () => {
    const n = 12_500_000; // 100 MB of float64
    const table = new Float64Array(n).map((_, i) => i);
    assert.equal(await sg.push('table', table), 1);
    const results = await sg.map<{ mark: string; pid: number; sum: number; length: number }>('read', items(100));
    assert.ok(results.every((r) => r.length === n && r.sum === n - 1));
    const marks = new Map<number, Set<string>>();
    for (const r of results) marks.set(r.pid, (marks.get(r.pid) ?? new Set()).add(r.mark));
    assert.ok(
      [...marks.values()].every((set) => set.size === 1),
      'a worker saw the same array in every job: it was not sent per job',
    );
    const status = await sg.status();
    assert.deepEqual(status.shared, [{ name: 'table', version: 1, bytes: status.shared[0]!.bytes }]);
    assert.ok(status.shared[0]!.bytes >= n * 8, `status reports its size: ${status.shared[0]!.bytes} bytes`);
  });

  test('refreshed workers get it again without the caller sending it', async () => {
    await sg.command('refresh');
    const results = await sg.map<{ missing?: boolean; length: number }>('read', items(10));
    assert.ok(results.every((r) => !r.missing && r.length === 12_500_000));
  });

  test('a new push replaces the value (a new version); drop removes it everywhere', async () => {
    assert.equal(await sg.push('table', Float64Array.from([1, 2, 3])), 2);
    assert.deepEqual(
      (await sg.map<{ sum: number }>('read', items(3))).map((r) => r.sum),
      [4, 4, 4],
    );
    assert.equal(await sg.drop('table'), true);
    assert.equal(await sg.drop('table'), false, 'nothing left to drop');
    assert.ok((await sg.map<{ missing?: boolean }>('read', items(4))).every((r) => r.missing));
    assert.deepEqual((await sg.status()).shared, []);
  });

  test('a value that cannot travel is refused at push, naming it', async () => {
    const socket = new net.Socket();
    await assert.rejects(sg.push('conn', { socket }), (error: Error) => error.name === 'SerializationError' && /pushed value 'conn'/.test(error.message));
    assert.deepEqual((await sg.status()).shared, []);
  });
});

describe('sg.push on shared servers', () => {
  let first: RunningServer;
  let late: RunningServer;
  before(async () => {
    [first, late] = await Promise.all([
      startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--log-level', 'error']),
      startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--log-level', 'error', '--max-message-mb', '1']),
    ]);
  });
  after(() => Promise.all([first.stop(), late.stop()]));

  test('each session reads its own values; a server that joins later gets them; one too large for it is refused', async () => {
    const a = await spawnScatterGather([first.endpoint], { echo: false, progress: false });
    const b = await spawnScatterGather([first.endpoint], { echo: false, progress: false });
    try {
      await a.define('who', '() => shared.who');
      await b.define('who', '() => shared.who');
      await a.push('who', 'A');
      await b.push('who', new Map([['b', 1]]));
      assert.deepEqual(await a.map('who', items(3)), ['A', 'A', 'A']);
      assert.deepEqual(await b.map('who', items(1)), [new Map([['b', 1]])]);

      await a.connect(late.endpoint);
      const up = Date.now();
      while ((await a.status()).workers < 2 && Date.now() - up < 10_000) await new Promise((resolve) => setTimeout(resolve, 20));
      const where = await a.mapResults('who', items(40));
      assert.ok(
        where.some((r) => r.worker.server !== where[0]!.worker.server),
        'jobs ran on both servers',
      );
      assert.ok(
        where.every((r) => r.value === 'A'),
        'the late server had the value before its first job',
      );
      await assert.rejects(a.push('big', new Uint8Array(2 * 1048576)), /'big' has a 2\.0 MB frame; server .* takes frames of at most 1\.0 MB/);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
