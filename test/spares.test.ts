/**
 * Spare workers: started, loaded and waiting, so that a refresh or a crash gets a fresh worker
 * without a Node start-up. Real embedded clusters; spares are found as the controller child's
 * worker processes that status() does not list.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import type { SpareCounts } from '../protocol/messages.js';
import { alive, descendantsRunning, startServer, waitUntil } from './helpers.js';

function workerProcesses(sg: ScatterGather): number[] {
  return workerProcessesOf(sg.controllerPid!);
}

function workerProcessesOf(parent: number): number[] {
  return descendantsRunning('server/worker.js', parent);
}

async function workerPids(sg: ScatterGather): Promise<number[]> {
  const status = await sg.status();
  return (status.servers as Array<{ workers: Array<{ pid: number }> }>).flatMap((server) => server.workers.map((worker) => worker.pid)).sort();
}

/** `parent`: the process that forks the workers (the controller child for an embedded cluster). */
async function sparePids(sg: ScatterGather, parent = sg.controllerPid!): Promise<number[]> {
  const workers = new Set(await workerPids(sg));
  return workerProcessesOf(parent)
    .filter((pid) => !workers.has(pid))
    .sort();
}

function sparesOf(status: Record<string, unknown>): SpareCounts {
  const servers = status.servers as Array<{ spares?: SpareCounts }>;
  return servers.reduce((sum, server) => ({ ready: sum.ready + (server.spares?.ready ?? 0), starting: sum.starting + (server.spares?.starting ?? 0) }), { ready: 0, starting: 0 });
}

/** Spares start a little after the workers are up; a server says when they change and status() counts them. */
async function sparesReady(sg: ScatterGather, count: number, parent = sg.controllerPid!): Promise<number[]> {
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer);
      sg.off('event', onEvent);
      if (error) reject(error);
      else resolve();
    };
    const check = async () => {
      const spares = sparesOf(await sg.status());
      if (spares.ready === count && spares.starting === 0) done();
    };
    const onEvent = ({ kind }: { kind: string }) => {
      if (kind === 'spares') check().catch(done);
    };
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${count} spare(s) to be ready`)), 10_000);
    sg.on('event', onEvent);
    check().catch(done);
  });
  const pids = await sparePids(sg, parent);
  assert.equal(pids.length, count, 'as many spare processes as the server counts');
  return pids;
}

describe('spare workers', { timeout: 60_000 }, () => {
  test('a refresh promotes the spares: the new workers are fresh processes that were already running, and new spares follow', async () => {
    const sg = await spawnScatterGather([], { workers: 2, echo: false });
    try {
      const spares = await sparesReady(sg, 2); // one per worker by default
      await sg.define('remember', () => ((globalThis as Record<string, unknown>).remembered = process.pid));
      await sg.define('recall', () => [process.pid, (globalThis as Record<string, unknown>).remembered ?? null]);
      await sg.map('remember', [[[]], [[]], [[]], [[]]]);

      await sg.command('refresh');
      assert.deepEqual(await workerPids(sg), spares, 'the refreshed workers are the spares');
      const recalled = (await sg.map(
        'recall',
        Array.from({ length: 8 }, () => [[]] as [unknown[]]),
      )) as Array<[number, number | null]>;
      for (const [pid, remembered] of recalled) {
        assert.ok(spares.includes(pid), `job ran on ${pid}, one of the promoted spares`);
        assert.equal(remembered, null, 'a promoted spare never ran a job before: nothing survives a refresh');
      }
      const next = await sparesReady(sg, 2); // new ones in place of the promoted
      for (const pid of next) assert.ok(!spares.includes(pid));
    } finally {
      await sg.close();
    }
  });

  test('a worker that crashes is replaced by a spare, and its job reruns there', async () => {
    const sg = await spawnScatterGather([], { workers: 1, echo: false });
    try {
      const [spare] = await sparesReady(sg, 1);
      const [first] = await workerPids(sg);
      await sg.define('crashOnce', (firstPid: number) => (process.pid === firstPid ? process.exit(7) : process.pid));
      assert.equal(await sg.submit('crashOnce', [first]), spare, 'the retry ran on the promoted spare');
      assert.deepEqual(await workerPids(sg), [spare]);
    } finally {
      await sg.close();
    }
  });

  test('a spare that dies while it waits is replaced; die stops the spares with the workers', async () => {
    const sg = await spawnScatterGather([], { workers: 1, echo: false });
    try {
      const [spare] = await sparesReady(sg, 1);
      process.kill(spare!, 'SIGKILL');
      await waitUntil(() => workerProcesses(sg).length === 2 && !workerProcesses(sg).includes(spare!), 10_000, 'a new spare in place of the killed one');
      const all = workerProcesses(sg);
      await sg.command('die');
      for (const pid of all) assert.ok(!alive(pid), `worker process ${pid} (worker or spare) is gone once die has answered`);
    } finally {
      await sg.close();
    }
  });

  test('a refresh runs --module as it is on disk then: a spare imports it only once promoted', async () => {
    const module = join(await mkdtemp(join(tmpdir(), 'tsgather-spares-')), 'release.mjs');
    await writeFile(module, 'export const release = () => 1;\n');
    const server = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1', '--log-level', 'error', '--module', module]);
    const sg = await spawnScatterGather([server.endpoint], { echo: false });
    try {
      assert.equal(await sg.submit('release', []), 1);
      const [spare] = await sparesReady(sg, 1, server.proc.pid!);
      // The spare counts as ready once it has said it has loaded, after its every import, so a spare
      // that imported the module early would run the version from before this edit.
      await writeFile(module, 'export const release = () => 2;\n');
      await sg.command('refresh');
      assert.deepEqual(await workerPids(sg), [spare!], 'the spare, started before the edit, took over');
      assert.equal(await sg.submit('release', []), 2, 'it imported the module when it was promoted');
    } finally {
      await sg.close();
      await server.stop();
    }
  });

  test('spareWorkers: 0 keeps none, and a refresh forks fresh workers', async () => {
    const none = await spawnScatterGather([], { workers: 2, spareWorkers: 0, echo: false });
    // Started after `none` was up, a default cluster's spares come later than `none`'s would have.
    const spared = await spawnScatterGather([], { workers: 1, echo: false });
    try {
      await sparesReady(spared, 1);
      assert.deepEqual(await sparePids(none), []);
      assert.deepEqual(sparesOf(await none.status()), { ready: 0, starting: 0 });
      const before = await workerPids(none);
      await none.command('refresh');
      const after = await workerPids(none);
      assert.equal(after.length, 2);
      for (const pid of after) assert.ok(!before.includes(pid), 'fresh processes, forked by the refresh');
    } finally {
      await Promise.all([none.close(), spared.close()]);
    }
  });
});
