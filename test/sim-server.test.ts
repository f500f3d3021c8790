/**
 * The scale bench's simulated servers (bench/scale/sim/) stand in for machines we do not have, so a
 * real controller must not be able to tell one from a real `tsgather server`: the same status, the
 * same results and failures for the same jobs, and the same recovery when one goes quiet. One real
 * server and one simulated server dial the same real controller here, side by side.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnScatterGather, type JobResult, type ScatterGather } from '../caller/index.js';
import type { ServerStatus } from '../protocol/status.js';
import { freePort, openController, realServers, simServers, type Controller, type RealServers } from '../bench/scale/cluster.js';
import type { SimFleet } from '../bench/scale/sim/fleet.js';

/** The shape of a value: its keys and the types of what they hold, arrays by their first element. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length > 0 ? [shape(value[0])] : [];
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, shape(inner)]));
  return typeof value;
}

const HEARTBEAT = { heartbeatMs: 1000, heartbeatTimeoutMs: 1500 };

describe('a simulated server beside a real one, on one real controller', () => {
  let controller: Controller;
  let real: RealServers;
  let fleet: SimFleet;
  let stopSim: () => Promise<void>;

  before(async () => {
    // The real server is up before the controller listens: one that joins while its workers still start
    // announces no functions in its welcome, and status() then shows none for it (server/server.ts).
    const port = await freePort();
    real = await realServers(1, 2, `tcp://127.0.0.1:${port}`, 0);
    controller = await openController({ ...HEARTBEAT, port });
    const sim = await simServers({ servers: [{ id: 'sim-1', workers: 2 }], controllers: [controller.address], processes: 1 });
    fleet = sim.fleet;
    stopSim = sim.stop;
    await controller.watch.until(4, 30_000);
  });
  after(async () => {
    await controller.sg.close();
    await Promise.all([real.stop(), stopSim()]);
  });

  test('status() shows it as it shows a real server: the same fields of the same types, its workers and functions', async () => {
    const status = await controller.sg.status();
    const byId = new Map(status.servers.map((s) => [s.id, s]));
    const [realEntry, simEntry] = [byId.get('real-1'), byId.get('sim-1')] as [ServerStatus, ServerStatus];
    assert.ok(realEntry && simEntry, `both servers in session: ${[...byId.keys()].join(', ')}`);
    assert.deepEqual(shape(simEntry), shape(realEntry));
    assert.deepEqual(simEntry.functions, realEntry.functions, 'both preload the same module');
    assert.equal(simEntry.workers!.length, realEntry.workers!.length);
    assert.ok(
      simEntry.workers!.every((w) => w.pid > 4_194_304),
      'fake pids are above any real one',
    );
  });

  test('the same jobs give the same results and failures from either', async () => {
    await controller.sg.define('nil', () => null);
    const byServer = async (fn: string, item: unknown[]) => {
      const results = await controller.sg.mapResults(
        fn,
        Array.from({ length: 40 }, () => [item]),
      );
      const split = new Map<string, JobResult[]>();
      for (const r of results) split.set(r.worker.server, [...(split.get(r.worker.server) ?? []), r]);
      assert.deepEqual(new Set(split.keys()), new Set(['real-1', 'sim-1']), `${fn}: both servers took some`);
      return split;
    };
    const view = (r: JobResult) => ({ ok: r.ok, value: r.value, fn: r.fn, version: r.version, attempts: r.attempts, error: r.error && { name: r.error.name, message: r.error.message } });
    for (const [fn, item] of [
      ['sleep', [2]],
      ['noop', []],
      ['nil', []],
      ['nowhere', []],
    ] as const) {
      const split = await byServer(fn, [...item]);
      assert.deepEqual(view(split.get('sim-1')![0]!), view(split.get('real-1')![0]!), `${fn}: the same result`);
    }
    const slept = (await byServer('sleep', [30])).get('sim-1')!;
    assert.ok(
      slept.every((r) => r.timings.runMs > 29.9 && r.timings.finishedAt - r.timings.startedAt >= 29),
      'a simulated job takes its run time',
    );
  });

  test('one that goes quiet is lost at its heartbeat timeout, as a real one is, and its jobs run on the other', async () => {
    const down = new Promise<Record<string, unknown>>((resolve) => {
      controller.sg.on('event', ({ kind, detail }) => {
        if (kind === 'server-down' && detail.server === 'sim-1') resolve(detail);
      });
    });
    // Quiet while idle, so that the controller last heard it on a heartbeat's answer: jobs sent to it from now on are lost with it.
    await fleet.silence('sim-1');
    const ids = controller.sg.addJob(
      'sleep',
      Array.from({ length: 8 }, () => [[300]]),
    );
    const detail = await down;
    const silentMs = Number(/no answer for (\d+) ms/.exec(String(detail.reason))?.[1]);
    // Given up on at its timeout, not at the first heartbeat after it: that came a heartbeat after its last answer, 2000 ms.
    assert.ok(silentMs >= HEARTBEAT.heartbeatTimeoutMs && silentMs < HEARTBEAT.heartbeatTimeoutMs + 250, `lost after ${silentMs} ms of silence (timeout ${HEARTBEAT.heartbeatTimeoutMs} ms)`);
    const results = await controller.sg.waitForResult({ all: true });
    assert.deepEqual(
      results.map((r) => r.id).sort((a, b) => a - b),
      ids,
    );
    assert.ok(results.every((r) => r.ok));
    const lost = await fleet.lost('sim-1');
    assert.ok(lost.length >= 2, `jobs went to each of its two workers at least (${lost.length})`);
    assert.ok(
      results.filter((r) => lost.includes(r.id)).every((r) => r.ok && r.worker.server === 'real-1'),
      'each ran on the real server',
    );
  });
});

describe('a controller that dials hundreds of servers', () => {
  test('dials 400 (a socket and its monitor each: past ZeroMQ’s default of 1,023 sockets a process) and gets work to all of them', async () => {
    const count = 400;
    const servers = Array.from({ length: count }, (_, i) => ({ id: `sim-${i + 1}`, workers: 1, bind: true }));
    const sim = await simServers({ servers, controllers: [], processes: 1 });
    let sg: ScatterGather | undefined;
    try {
      sg = await spawnScatterGather(
        servers.map(({ id }) => sim.fleet.endpoints[id]!),
        { echo: false, progress: false, connectTimeoutMs: 60_000, logLevel: 'error' },
      );
      const status = await sg.status();
      assert.equal(status.servers.filter((s) => s.connected).length, count);
      assert.equal(status.workers, count);
      const results = await sg.mapResults(
        'sleep',
        Array.from({ length: count }, () => [[5]]),
      );
      assert.equal(new Set(results.map((r) => r.worker.server)).size, count, 'a job of 5 ms went to every server');
    } finally {
      await sg?.close();
      await sim.stop();
    }
  });
});
