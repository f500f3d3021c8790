/**
 * Nothing lost across sharing, draining, refreshing and a crash: three servers (one here, two on
 * hosts made with network namespaces) shared by four controllers that come and go. Mid-run one
 * controller refreshes, the local server drains (SIGTERM), and one remote host loses power (every
 * process in it SIGKILLed). Every job of every controller is reported exactly once, with its value.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { spawnScatterGather, type JobResult, type ScatterGather } from '../caller/index.js';
import { cli, listeningEndpoint, startServer, type RunningServer } from './helpers.js';

const tag = `tsgk${process.pid % 10000}`;
/** Two server hosts, each joined to this (the root) namespace by a veth pair. */
const hosts = [
  { ns: `${tag}-x`, dev: `${tag}x`, peer: `${tag}rx`, addr: '10.78.1.2', peerAddr: '10.78.1.1' },
  { ns: `${tag}-y`, dev: `${tag}y`, peer: `${tag}ry`, addr: '10.78.2.2', peerAddr: '10.78.2.1' },
];

function ip(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    throw new Error(`\`ip ${args.join(' ')}\` failed: ${((error as { stderr?: string }).stderr ?? '').trim() || (error as Error).message}`);
  }
}

function makeHosts(): void {
  if (process.getuid?.() !== 0) throw new Error('this test makes network namespaces and needs root (it runs as root in CI)');
  for (const host of hosts) {
    ip('netns', 'add', host.ns);
    ip('link', 'add', host.peer, 'type', 'veth', 'peer', 'name', host.dev, 'netns', host.ns);
    ip('addr', 'add', `${host.peerAddr}/24`, 'dev', host.peer);
    ip('-n', host.ns, 'addr', 'add', `${host.addr}/24`, 'dev', host.dev);
    ip('link', 'set', host.peer, 'up');
    ip('-n', host.ns, 'link', 'set', host.dev, 'up');
    ip('-n', host.ns, 'link', 'set', 'lo', 'up');
  }
}

/** Every process in a namespace, SIGKILLed: its machine lost power. */
function powerOff(ns: string): void {
  let pids: number[] = [];
  try {
    pids = ip('netns', 'pids', ns).split('\n').filter(Boolean).map(Number);
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function removeHosts(): void {
  for (const host of hosts) {
    powerOff(host.ns);
    try {
      ip('netns', 'del', host.ns); // takes its veth pair with it
    } catch {
      // not made
    }
  }
}

/** `tsgather server` inside a host's namespace, bound to its address; resolves once it listens. */
async function serverOn(host: (typeof hosts)[number]): Promise<ChildProcess> {
  const args = ['netns', 'exec', host.ns, process.execPath, cli, 'server', '--bind', `tcp://${host.addr}:5555`, '--insecure', '--workers', '2', '--spare-workers', '1', '--log-level', 'error'];
  const proc = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  await listeningEndpoint(proc, (code) => `server on ${host.ns} exited with ${code} before listening`);
  return proc;
}

const JOB = `async (controller, i) => { await new Promise((r) => setTimeout(r, 3)); return controller + ':' + i; }`;

/** A controller on every server, and the results of its jobs as they come. */
async function controller(urls: string[]): Promise<ScatterGather> {
  const sg = await spawnScatterGather(urls, { echo: false, progress: false, insecure: true, heartbeatMs: 250, heartbeatTimeoutMs: 1500, connectTimeoutMs: 20_000 });
  await sg.define('job', JOB);
  return sg;
}

/** Every job reported exactly once, with its own value. */
function checkExactlyOnce(name: string, ids: number[], results: JobResult[]): void {
  const seen = new Map<number, number>();
  for (const r of results) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
  const duplicates = [...seen].filter(([, n]) => n > 1);
  assert.deepEqual(duplicates, [], `${name}: no job reported twice`);
  const missing = ids.filter((id) => !seen.has(id));
  assert.deepEqual(missing.length, 0, `${name}: ${missing.length} job(s) never reported, e.g. ${missing.slice(0, 5)}`);
  assert.equal(results.length, ids.length, `${name}: as many results as jobs`);
  const failed = results.filter((r) => !r.ok);
  assert.deepEqual(
    failed.map((r) => `${r.id}: ${r.error?.message}`),
    [],
    `${name}: no job failed`,
  );
  const index = new Map(ids.map((id, i) => [id, i]));
  for (const r of results) assert.equal(r.value, `${name}:${index.get(r.id)}`);
}

const items = (name: string, n: number) => Array.from({ length: n }, (_, i) => [[name, i]] as [unknown[]]);

let local: RunningServer;
const remote: ChildProcess[] = [];
before(async () => {
  removeHosts();
  makeHosts();
  local = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '2', '--spare-workers', '1', '--drain-seconds', '2', '--log-level', 'error']);
  remote.push(...(await Promise.all(hosts.map(serverOn))));
});
after(async () => {
  await local?.stop('SIGKILL');
  removeHosts();
});

test('three servers, four controllers coming and going, a refresh, a drain and a power loss: every job reported exactly once', async () => {
  const urls = [local.endpoint, ...hosts.map((h) => `tcp://${h.addr}:5555`)];
  const [c1, c2] = await Promise.all([controller(urls), controller(urls)]);
  const all: ScatterGather[] = [c1, c2];
  try {
    assert.equal((await c1.status()).workers, 6, 'c1 has the three servers');
    const c1Ids = c1.addJob('job', items('c1', 3000));
    const c1Results: JobResult[] = [];
    const c2Run = c2.mapResults('job', items('c2', 2000));
    const upTo = async (n: number) => {
      while (c1Results.length < n) c1Results.push(...(await c1.waitForResult({ timeout: 20_000 })));
    };

    // A third controller comes, runs its jobs through the events below, and goes.
    const c3Done = (async () => {
      const c3 = await controller(urls);
      all.push(c3);
      const results = await c3.mapResults('job', items('c3', 600));
      await c3.close();
      return results;
    })();

    await upTo(400);
    await c2.command('refresh'); // c2's fresh workers everywhere; nobody else's job killed
    await upTo(900);
    const drained = once(local.proc, 'exit');
    local.proc.kill('SIGTERM'); // the local server drains: finishes what runs, hands back the rest
    await upTo(1400);
    powerOff(hosts[1]!.ns); // host y loses power mid-run
    const c3Results = await c3Done;
    // A fourth comes after the third has gone, onto what is left.
    const c4 = await controller(urls.slice(1, 2));
    all.push(c4);
    const c4Results = await c4.mapResults('job', items('c4', 300));
    await upTo(c1Ids.length);
    const c2Results = await c2Run;
    await drained;
    assert.equal(local.proc.exitCode, 0, 'the drained server exited cleanly');

    checkExactlyOnce('c1', c1Ids, c1Results);
    for (const [name, results, n] of [
      ['c2', c2Results, 2000],
      ['c3', c3Results, 600],
      ['c4', c4Results, 300],
    ] as const) {
      checkExactlyOnce(
        name,
        results.map((r) => r.id),
        results,
      );
      assert.equal(results.length, n);
    }
    const status = await c1.status();
    assert.deepEqual(
      status.servers.filter((s) => s.connected).map((s) => s.url),
      [urls[1]],
      'only host x is left',
    );
    assert.equal(status.queued + status.inflight, 0);
  } finally {
    for (const sg of all) await sg.close();
    for (const proc of remote) proc.kill('SIGKILL');
  }
});
