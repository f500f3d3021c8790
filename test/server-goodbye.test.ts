/** A server that stops on purpose (`tsgather server stop`, SIGTERM) is reported down once, and stays down until a new process serves again. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { runCli } from './cli-helpers.js';
import { nextEvent, startServer, stopDaemonsIn, type RunningServer } from './helpers.js';

const heartbeatMs = 100;

let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), 'tsgather-goodbye-'))));
after(async () => {
  await stopDaemonsIn(dir);
  await rm(dir, { recursive: true, force: true });
});

type Event = { kind: string; detail: Record<string, unknown> };

/** Every event from now on, in order. */
function record(sg: ScatterGather): Event[] {
  const events: Event[] = [];
  sg.on('event', (event: Event) => events.push(event));
  return events;
}

async function connectedServers(sg: ScatterGather): Promise<unknown[]> {
  const { servers } = await sg.status();
  return (servers as Array<{ id?: string; connected: boolean }>).filter((s) => s.connected).map((s) => s.id);
}

/**
 * Resolves once `server` has its spare worker ready. Its session is then older than a heartbeat (the
 * controller greets a server without a session again only after that), and a stopped server takes a
 * moment to reap the spare: a controller that did not mind its goodbye greeted it back in meanwhile.
 */
async function spareReady(sg: ScatterGather, server: string): Promise<void> {
  const ready = nextEvent(sg, 'spares', (d) => d.server === server && Number(d.ready) > 0);
  const { servers } = await sg.status();
  if ((servers as Array<{ id?: string; spares?: { ready: number } }>).some((s) => s.id === server && (s.spares?.ready ?? 0) > 0)) return;
  await ready;
}

/** Stops `server` with `stop`; the controller must say it is down at once, and not take it back while it closes. */
async function staysDown(sg: ScatterGather, events: Event[], server: string, stop: () => Promise<void>): Promise<void> {
  const mark = events.length;
  const down = nextEvent(sg, 'server-down', (d) => d.server === server);
  const stopped = stop();
  assert.match(String((await down).reason), /shutting down/);
  assert.deepEqual(await connectedServers(sg), [], 'not connected right after its server-down');
  await stopped;
  // An absence can only be waited for: two heartbeats, in which the controller greets the address twice.
  await new Promise((resolve) => setTimeout(resolve, 2 * heartbeatMs));
  const since = events
    .slice(mark)
    .filter((e) => e.kind.startsWith('server-'))
    .map((e) => `${e.kind} ${String(e.detail.server)}`);
  assert.deepEqual(since, [`server-down ${server}`], 'down once, and no server-up after its goodbye');
  assert.deepEqual(await connectedServers(sg), []);
}

describe('a server that said goodbye', { timeout: 60_000 }, () => {
  test('a dialled daemon stopped with `tsgather server stop` stays down; a new server on its address comes up, and goes down the same way on SIGTERM', async () => {
    const pidfile = join(dir, 'alpha.pid');
    const started = await runCli(['server', '--daemon', '--pidfile', pidfile, '--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--name', 'alpha']);
    assert.equal(started.code, 0, started.stderr);
    const endpoint = /^listening on (\S+)$/m.exec(started.stdout)![1]!;
    const sg = await spawnScatterGather([endpoint], { echo: false, heartbeatMs, logLevel: 'error' });
    let again: RunningServer | undefined;
    try {
      const events = record(sg);
      await sg.define('twice', (x: number) => 2 * x);
      assert.deepEqual(await sg.map('twice', [[[1]]]), [2]);
      await spareReady(sg, 'alpha');

      await staysDown(sg, events, 'alpha', async () => {
        const stopped = await runCli(['server', 'stop', '--pidfile', pidfile]);
        assert.equal(stopped.code, 0, stopped.stderr);
      });

      // Same address, same name: only its pid tells the new process from the one that left.
      const up = nextEvent(sg, 'worker-up', (d) => d.server === 'alpha');
      again = await startServer(['--bind', endpoint, '--workers', '1', '--name', 'alpha']);
      await up;
      assert.deepEqual(await connectedServers(sg), ['alpha']);
      assert.deepEqual(await sg.map('twice', [[[3]]]), [6]);
      await spareReady(sg, 'alpha');

      await staysDown(sg, events, 'alpha', () => again!.stop('SIGTERM'));
    } finally {
      await sg.close();
      await again?.stop();
    }
  });

  test('a server that dialled in and got SIGTERM stays down; started again, it dials in and comes up', async () => {
    const sg = await spawnScatterGather([], { embedded: false, listen: 'tcp://127.0.0.1:0', echo: false, heartbeatMs, logLevel: 'error' });
    let server: RunningServer | undefined;
    try {
      const events = record(sg);
      const start = async () => {
        const up = nextEvent(sg, 'worker-up', (d) => d.server === 'beta');
        server = await startServer(['--connect', sg.listenAddress!, '--workers', '1', '--name', 'beta'], { waitForEndpoint: false });
        await up;
        assert.deepEqual(await connectedServers(sg), ['beta']);
        await spareReady(sg, 'beta');
      };
      await start();
      await staysDown(sg, events, 'beta', () => server!.stop('SIGTERM'));
      await start();
      await staysDown(sg, events, 'beta', () => server!.stop('SIGTERM'));
    } finally {
      await sg.close();
      await server?.stop();
    }
  });
});

describe('a server that vanished without a goodbye', () => {
  test('close() still returns once the only server that dialled in was killed (its pings can go nowhere)', async () => {
    const sg = await spawnScatterGather([], { embedded: false, listen: 'tcp://127.0.0.1:0', heartbeatMs, heartbeatTimeoutMs: 5 * heartbeatMs, echo: false });
    let server: RunningServer | undefined;
    try {
      const up = nextEvent(sg, 'worker-up', (d) => d.server === 'gamma');
      server = await startServer(['--connect', sg.listenAddress!, '--workers', '1', '--name', 'gamma'], { waitForEndpoint: false });
      await up;
      const down = nextEvent(sg, 'server-down', (d) => d.server === 'gamma');
      await server.stop('SIGKILL');
      await down;
    } finally {
      // No server is left to take what the controller queued for it: close() must not wait for ever.
      let timer: NodeJS.Timeout | undefined;
      const closing = await Promise.race([sg.close().then(() => 'closed'), new Promise((resolve) => (timer = setTimeout(() => resolve('still closing'), 10_000)))]);
      clearTimeout(timer);
      if (closing !== 'closed') process.kill(sg.controllerPid!, 'SIGKILL');
      assert.equal(closing, 'closed');
      await server?.stop();
    }
  });
});
