/**
 * Three hosts made with network namespaces: a controller host and two server hosts, each server
 * host joined to the controller host by its own veth pair. Mid-run one server host has all its
 * processes killed, and the other's link goes down and comes back. Every job gets exactly one
 * result. Runs as root; when namespaces cannot be made the test fails saying why.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cli } from './helpers.js';

const driverScript = fileURLToPath(new URL('./fixtures/netns-driver.js', import.meta.url));
const tag = `tsgt${process.pid % 10000}`;
const ns = { controller: `${tag}-c`, alpha: `${tag}-a`, beta: `${tag}-b` };
/** Each server host: its namespace, its veth end and address, and the controller-side end and address. */
const hosts = {
  alpha: { ns: ns.alpha, dev: `${tag}a`, addr: '10.77.1.2', peer: `${tag}ca`, peerAddr: '10.77.1.1' },
  beta: { ns: ns.beta, dev: `${tag}b`, addr: '10.77.2.2', peer: `${tag}cb`, peerAddr: '10.77.2.1' },
};
const url = (host: (typeof hosts)[keyof typeof hosts]) => `tcp://${host.addr}:5555`;

function ip(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`\`ip ${args.join(' ')}\` failed: ${stderr.trim() || (error as Error).message}`);
  }
}

function makeHosts(): void {
  if (process.getuid?.() !== 0) throw new Error('this test makes network namespaces and needs root (it runs as root in CI); it cannot run as an ordinary user');
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error("the 'ip' command (iproute2) is missing: test/setup.sh installs it");
  }
  for (const name of Object.values(ns)) ip('netns', 'add', name);
  for (const host of Object.values(hosts)) {
    ip('link', 'add', host.peer, 'netns', ns.controller, 'type', 'veth', 'peer', 'name', host.dev, 'netns', host.ns);
    ip('-n', ns.controller, 'addr', 'add', `${host.peerAddr}/24`, 'dev', host.peer);
    ip('-n', host.ns, 'addr', 'add', `${host.addr}/24`, 'dev', host.dev);
    ip('-n', ns.controller, 'link', 'set', host.peer, 'up');
    ip('-n', host.ns, 'link', 'set', host.dev, 'up');
  }
  for (const name of Object.values(ns)) ip('-n', name, 'link', 'set', 'lo', 'up');
}

function removeHosts(): void {
  for (const name of Object.values(ns)) {
    killAllIn(name);
    try {
      ip('netns', 'del', name);
    } catch {
      // not made, or already gone
    }
  }
}

/** Kills every process in a namespace, as if its machine lost power (or, with SIGSTOP, froze). */
function killAllIn(name: string, signal: NodeJS.Signals = 'SIGKILL'): number[] {
  let pids: number[] = [];
  try {
    pids = ip('netns', 'pids', name).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
  return pids;
}

interface Message {
  t: string;
  kind?: string;
  detail?: Record<string, unknown>;
  ids?: number[];
  id?: number;
  ok?: boolean;
  error?: string;
  server?: string;
  status?: Record<string, unknown>;
}

/** The controller host: test/fixtures/netns-driver.js inside the controller namespace. */
class Driver extends EventEmitter {
  readonly proc: ChildProcess;
  readonly log: string[] = [];

  constructor(urls: string[], options: Record<string, unknown>) {
    super();
    this.proc = spawn('ip', ['netns', 'exec', ns.controller, process.execPath, driverScript, JSON.stringify({ urls, options })], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr!.setEncoding('utf8').on('data', (text: string) => this.log.push(text));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => this.emit('message', JSON.parse(line) as Message));
    this.proc.once('exit', (code) => this.emit('message', { t: 'exit', detail: { code } }));
  }

  /** The next message passing `filter`; rejects if the driver exits first. */
  next(filter: (m: Message) => boolean): Promise<Message> {
    return new Promise((resolve, reject) => {
      const listener = (m: Message) => {
        if (m.t === 'exit') {
          this.off('message', listener);
          reject(new Error(`the controller host's driver exited (${JSON.stringify(m.detail)}): ${this.log.join('')}`));
        } else if (filter(m)) {
          this.off('message', listener);
          resolve(m);
        }
      };
      this.on('message', listener);
    });
  }

  send(command: Record<string, unknown>): void {
    this.proc.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  /** Queues `jobs` sleeps; `disrupt` runs once `afterResults` results are in; resolves with every result, and the status once both are over. */
  async run(jobs: number, ms: number, afterResults: number, disrupt: () => Promise<void>) {
    const results: Message[] = [];
    let disrupted: Promise<void> | undefined;
    const collect = (m: Message) => {
      if (m.t !== 'result') return;
      results.push(m);
      if (results.length === afterResults) disrupted = disrupt();
    };
    this.on('message', collect);
    const queued = this.next((m) => m.t === 'queued');
    const done = this.next((m) => m.t === 'done');
    this.send({ t: 'run', jobs, ms });
    const { ids } = await queued;
    await done;
    this.off('message', collect);
    await disrupted;
    const status = this.next((m) => m.t === 'status');
    this.send({ t: 'status' });
    return { ids: ids!, results, status: (await status).status! };
  }
}

function startServer(host: (typeof hosts)[keyof typeof hosts], name: string, keys: Keys): ChildProcess {
  const proc = spawn(
    'ip',
    [
      'netns',
      'exec',
      host.ns,
      process.execPath,
      cli,
      'server',
      '--bind',
      url(host),
      '--workers',
      '2',
      '--name',
      name,
      '--log-level',
      'warn',
      '--key-file',
      keys.file(name),
      '--authorized-keys',
      keys.pub('controller'),
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  return proc;
}

interface Keys {
  dir: string;
  file(name: string): string;
  pub(name: string): string;
}

function makeKeys(): Keys {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsg-netns-keys-'));
  for (const name of ['controller', 'alpha', 'beta']) execFileSync(process.execPath, [cli, 'keys', 'generate', '--out', dir, '--name', name], { stdio: 'ignore' });
  return { dir, file: (name) => path.join(dir, `${name}.key`), pub: (name) => path.join(dir, `${name}.pub`) };
}

/** Every queued id has exactly one result, and every result succeeded. */
function assertExactlyOnce(ids: number[], results: Message[]): void {
  const counts = new Map<number, number>();
  for (const r of results) counts.set(r.id!, (counts.get(r.id!) ?? 0) + 1);
  const missing = ids.filter((id) => !counts.has(id));
  const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  assert.deepEqual(missing, [], 'jobs without a result');
  assert.deepEqual(twice, [], 'jobs with more than one result');
  assert.equal(results.length, ids.length);
  const failed = results.filter((r) => !r.ok);
  assert.deepEqual(failed, [], 'every job succeeded');
}

describe('three hosts in network namespaces', () => {
  let driver: Driver | undefined;
  let keys: Keys | undefined;

  before(() => {
    removeHosts(); // leftovers of an interrupted run with the same tag
    makeHosts();
    keys = makeKeys();
    startServer(hosts.alpha, 'alpha', keys);
    startServer(hosts.beta, 'beta', keys);
  });

  after(async () => {
    if (driver && driver.proc.exitCode === null) {
      const gone = once(driver.proc, 'exit');
      driver.send({ t: 'close' });
      await gone;
    }
    removeHosts();
    if (keys) rmSync(keys.dir, { recursive: true, force: true });
  });

  test('the controller host reaches both server hosts over their veth links, with keys', async () => {
    driver = new Driver([url(hosts.alpha), url(hosts.beta)], {
      keyFile: keys!.file('controller'),
      serverKeys: { [url(hosts.alpha)]: keys!.pub('alpha'), [url(hosts.beta)]: keys!.pub('beta') },
      heartbeatMs: 200,
      heartbeatTimeoutMs: 1200,
      connectTimeoutMs: 20_000,
    });
    await driver.next((m) => m.t === 'ready');
    const { ids, results } = await driver.run(40, 5, -1, async () => {});
    assertExactlyOnce(ids, results);
    assert.deepEqual(new Set(results.map((r) => r.server)), new Set(['alpha', 'beta']));
  });

  test('a server host whose processes are all killed mid-run: its jobs finish on the other; restarted, it rejoins', async () => {
    const { ids, results, status } = await driver!.run(400, 20, 40, async () => {
      const lost = driver!.next((m) => m.kind === 'server-down' && m.detail?.server === 'alpha');
      const killed = killAllIn(ns.alpha);
      assert.ok(killed.length >= 3, `the server and its two workers were running in ${ns.alpha} (found ${killed.length} processes)`);
      await lost;
      const back = driver!.next((m) => m.kind === 'worker-up' && m.detail?.server === 'alpha');
      startServer(hosts.alpha, 'alpha', keys!);
      await back;
    });
    assertExactlyOnce(ids, results);
    assert.ok(results.some((r) => r.server === 'beta'));
    const alpha = (status.servers as Array<{ id?: string; connected: boolean }>).find((s) => s.id === 'alpha');
    assert.ok(alpha?.connected, 'the restarted alpha is in session again');
  });

  test('a link that goes down and comes back: jobs move to the other host, and the server rejoins', async () => {
    const beta = hosts.beta;
    const { ids, results, status } = await driver!.run(600, 20, 40, async () => {
      const lost = driver!.next((m) => m.kind === 'server-down' && m.detail?.server === 'beta');
      ip('-n', beta.ns, 'link', 'set', beta.dev, 'down');
      await lost;
      const rejoined = driver!.next((m) => m.kind === 'server-up' && m.detail?.server === 'beta');
      ip('-n', beta.ns, 'link', 'set', beta.dev, 'up');
      await rejoined;
    });
    assertExactlyOnce(ids, results);
    const betaStatus = (status.servers as Array<{ id?: string; connected: boolean }>).find((s) => s.id === 'beta');
    assert.ok(betaStatus?.connected, 'beta rejoined after its link came back');
  });

  test('a host that freezes past the heartbeat timeout and thaws: its late results are dropped by job id', async () => {
    const before = (await driver!.run(0, 0, -1, async () => {})).status.duplicatesDropped as number;
    const { ids, results, status } = await driver!.run(400, 20, 40, async () => {
      const lost = driver!.next((m) => m.kind === 'server-down' && m.detail?.server === 'beta');
      const frozen = killAllIn(ns.beta, 'SIGSTOP');
      await lost;
      // Its jobs were requeued on alpha; wait until alpha has answered for some of them, then thaw.
      await driver!.next((m) => m.t === 'result' && m.server === 'alpha');
      const rejoined = driver!.next((m) => m.kind === 'server-up' && m.detail?.server === 'beta');
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
      await rejoined;
    });
    assertExactlyOnce(ids, results);
    assert.ok(
      (status.duplicatesDropped as number) > before,
      `beta's workers finished jobs already answered by alpha; their late results were dropped (${status.duplicatesDropped} duplicates, ${before} before)`,
    );
  });
});
