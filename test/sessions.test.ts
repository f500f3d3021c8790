/**
 * A compute server shared by several controllers (notebooks): each is a session, and one
 * controller's close() or die ends its own session only. A server started for one controller
 * alone (--exclusive, or the embedded one) stops its workers on that controller's die.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { descendantsRunning, startServer, stopDaemonsIn, waitUntil, type RunningServer } from './helpers.js';
import { runCli } from './cli-helpers.js';
import { expandServerName } from '../cli/server-name.js';

let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), 'tsgather-sessions-'))));
after(async () => {
  await stopDaemonsIn(dir);
  await rm(dir, { recursive: true, force: true });
});

/** `promise`, or a rejection naming `what` after `ms`: a session stuck behind another's close fails here, not at the suite's time-out. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const items = (n: number) => Array.from({ length: n }, (_, i) => [[i]] as [number[]]);

describe('a shared server', () => {
  let server: RunningServer;
  before(async () => (server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '2', '--spare-workers', '0', '--log-level', 'error'])));
  after(() => server.stop());

  test("one controller's close() mid-run leaves another's jobs running to the end; each has its own definition of the same name", async () => {
    const a = await spawnScatterGather([server.endpoint], { echo: false });
    const b = await spawnScatterGather([server.endpoint], { echo: false });
    let c: ScatterGather | undefined;
    try {
      const slow = (tag: string) => `async (i) => { await new Promise((r) => setTimeout(r, 5)); return '${tag}' + i; }`;
      await a.define('who', slow('A'));
      await b.define('who', slow('B'));
      const aIds = a.addJob('who', items(300));
      const bRun = b.map<string>('who', items(300));
      // A goes away part way through its 300 jobs, with jobs queued and running on both workers.
      let aDone = 0;
      while (aDone < 20) aDone += (await a.waitForResult()).length;
      assert.ok(aDone < aIds.length, 'A closes with jobs still outstanding');
      await a.close();
      const bValues = await within(bRun, 30_000, "B's map after A closed");
      assert.deepEqual(
        bValues,
        items(300).map(([[i]]) => `B${i}`),
      );
      const status = await b.status();
      assert.equal(status.workers, 2, 'the server still has both workers for B');
      // A controller that comes later is served too, with a definition of its own.
      c = await spawnScatterGather([server.endpoint], { echo: false });
      await c.define('who', (i: number) => `C${i}`);
      assert.deepEqual(await within(c.map('who', items(3)), 10_000, "C's map"), ['C0', 'C1', 'C2']);
    } finally {
      await a.close();
      await b.close();
      await c?.close();
    }
    assert.equal(descendantsRunning('server/worker.js', server.proc.pid).length, 2, 'the server kept its workers through three sessions');
  });

  test("a newcomer's ?workers=N does not shrink the pool under a session in progress", async () => {
    const a = await spawnScatterGather([server.endpoint], { echo: false });
    try {
      await a.define('id', (i: number) => i);
      const running = a.map('id', items(200));
      const b = await spawnScatterGather([`${server.endpoint}?workers=1`], { echo: false, connectTimeoutMs: 5000 });
      try {
        assert.equal((await running).length, 200);
        // B hears of the workers one worker-up at a time: ask until it has heard of both, or of no more for a while.
        let seen = 0;
        for (const deadline = Date.now() + 3000; seen < 2 && Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 50))) seen = (await b.status()).workers;
        assert.equal(seen, 2, 'B sees the two workers A is using');
        assert.equal((await a.status()).workers, 2);
        assert.equal(descendantsRunning('server/worker.js', server.proc.pid).length, 2, 'the pool was not shrunk');
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
    }
  });
});

describe('an exclusive server', () => {
  test("its controller's close() stops its workers, as the embedded server's does", async () => {
    const server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '2', '--spare-workers', '0', '--exclusive', '--log-level', 'error']);
    try {
      const sg = await spawnScatterGather([server.endpoint], { echo: false });
      await sg.define('one', () => 1);
      assert.deepEqual(await sg.map('one', items(4)), [1, 1, 1, 1]);
      await sg.close();
      await waitUntil(() => descendantsRunning('server/worker.js', server.proc.pid).length === 0, 10_000, "the exclusive server's workers to stop");
    } finally {
      await server.stop();
    }
  });
});

describe('--idle-exit', () => {
  test('a server goes, cleanly, once no controller has been in session for that long; not while one is', async () => {
    const server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--idle-exit', '1', '--log-level', 'info']);
    const exited = new Promise<number | null>((resolve) => server.proc.once('exit', (code) => resolve(code)));
    try {
      const sg = await spawnScatterGather([server.endpoint], { echo: false });
      try {
        await sg.define('one', () => 1);
        // Connected, idle between jobs, for over twice --idle-exit: its pings keep it in session.
        await new Promise((resolve) => setTimeout(resolve, 2500));
        assert.equal(server.proc.exitCode, null, 'still serving while a controller is in session');
        assert.equal(await sg.submit('one', []), 1);
      } finally {
        await sg.close();
      }
      assert.equal(await within(exited, 10_000, 'the idle server to exit'), 0);
      assert.match(server.log.join(''), /"why":"no controller for 1 s \(--idle-exit\)","msg":"stopping"/);
    } finally {
      await server.stop();
    }
  });
});

describe('a server told to drain', () => {
  test('SIGUSR1: the running job finishes there, the queued ones run elsewhere, none fails or runs twice, and it exits 0', async () => {
    const alpha = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--name', 'alpha', '--drain-seconds', '20', '--log-level', 'info']);
    const beta = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--name', 'beta', '--log-level', 'error']);
    const exited = new Promise<number | null>((resolve) => alpha.proc.once('exit', (code) => resolve(code)));
    const sg = await spawnScatterGather([alpha.endpoint, beta.endpoint], { echo: false });
    try {
      await sg.define('slow', async (i: number) => {
        console.log(`started ${i}`);
        await new Promise((resolve) => setTimeout(resolve, 600));
        return i;
      });
      // The signal goes once alpha runs a job (its worker says so): that one must finish on alpha.
      const runningOnAlpha = new Promise<number>((resolve) => {
        const listener = (output: { job: number | null; server: string; text: string }) => {
          if (output.server !== 'alpha' || !output.text.startsWith('started') || output.job === null) return;
          sg.off('output', listener);
          resolve(output.job);
        };
        sg.on('output', listener);
      });
      const ids = sg.addJob('slow', items(8));
      const running = await within(runningOnAlpha, 10_000, 'a job to start on alpha');
      alpha.proc.kill('SIGUSR1');
      const results = await within(sg.waitForResult({ all: true }), 30_000, 'every result');
      assert.deepEqual(
        results.map((r) => r.id).sort((a, b) => a - b),
        ids,
        'every job once',
      );
      assert.ok(
        results.every((r) => r.ok),
        JSON.stringify(results.filter((r) => !r.ok).map((r) => r.error?.message)),
      );
      assert.equal(results.find((r) => r.id === running)!.worker.server, 'alpha', 'the job running at the signal finished where it ran');
      assert.equal(await within(exited, 10_000, 'alpha to exit'), 0);
      assert.match(alpha.log.join(''), /"why":"SIGUSR1","msg":"stopping"[\s\S]*"msg":"draining"/);
    } finally {
      await sg.close();
      await alpha.stop();
      await beta.stop();
    }
  });
});

describe('server names', () => {
  test('--name expands $VAR, ${VAR}, {host} and {pid} itself, so servers started by one command differ; an unset variable is refused', async () => {
    assert.equal(expandServerName('n-${A}-$B-{pid}', { A: 'x', B: 'y' }, 42), 'n-x-y-42');
    process.env.TSG_TEST_JOB = '77';
    let first: RunningServer | undefined;
    let second: RunningServer | undefined;
    try {
      const name = 'node-$TSG_TEST_JOB-{pid}';
      first = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--name', name, '--log-level', 'error']);
      second = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--name', name, '--log-level', 'error']);
      const sg = await spawnScatterGather([first.endpoint, second.endpoint], { echo: false });
      try {
        const ids = (await sg.status()).servers.map((server) => server.id).sort();
        assert.deepEqual(ids, [`node-77-${first.proc.pid}`, `node-77-${second.proc.pid}`].sort());
      } finally {
        await sg.close();
      }
    } finally {
      delete process.env.TSG_TEST_JOB;
      await first?.stop();
      await second?.stop();
    }
    const refused = await runCli(['server', '--bind', 'tcp://127.0.0.1:0', '--name', 'node-$TSG_TEST_UNSET']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--name node-\$TSG_TEST_UNSET: \$TSG_TEST_UNSET is not set in the server's environment/);
  });
});

describe('--lifetime', () => {
  test('a server drains and exits 0 on its own clock, within its stagger', async () => {
    const started = Date.now();
    const server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--lifetime', '1', '--lifetime-stagger', '1', '--log-level', 'info']);
    const code = await within(new Promise<number | null>((resolve) => server.proc.once('exit', (exitCode) => resolve(exitCode))), 15_000, 'the server to exit');
    assert.equal(code, 0);
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds >= 1, `not before its lifetime (${seconds} s)`);
    // 1 s plus up to 1 s of stagger, logged to a tenth: 1.0 to 2.0 (a draw of 1.95 or more shows as 2.0).
    const logged = /"why":"lifetime of (\d\.\d) s is over \(--lifetime\)","msg":"stopping"[\s\S]*"msg":"draining"/.exec(server.log.join(''));
    assert.ok(logged, server.log.join(''));
    const lifetime = Number(logged[1]);
    assert.ok(lifetime >= 1 && lifetime <= 2, `a lifetime of 1 s with up to 1 s of stagger, not ${lifetime} s`);
  });
});

describe('refresh on a shared server', () => {
  test("one controller's refresh reforks a worker only after another controller's job on it is done: that job is neither killed nor rerun", async () => {
    const server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--log-level', 'error']);
    const a = await spawnScatterGather([server.endpoint], { echo: false });
    const b = await spawnScatterGather([server.endpoint], { echo: false });
    try {
      await a.define('long', async () => {
        console.log('started');
        await new Promise((resolve) => setTimeout(resolve, 800));
        return process.pid;
      });
      const started = new Promise<void>((resolve) => a.once('output', () => resolve()));
      const running = a.mapResults('long', [[[]]]);
      await within(started, 10_000, "A's job to start");
      const before = (await b.status()).servers[0]!.workers!.map((w) => w.pid);
      const replaced = new Promise<void>((resolve) => b.on('event', (e) => e.kind === 'worker-down' && e.detail.cause === 'refresh' && resolve()));
      await b.command('refresh');
      const [result] = await within(running, 10_000, "A's job");
      assert.equal(result!.ok, true, String(result!.error));
      assert.equal(result!.attempts, 1, "A's job ran once, to its end");
      assert.deepEqual([result!.value], before, 'on the worker it started on');
      // Then that worker is reforked for B: B's next job runs on a fresh one.
      await within(replaced, 10_000, 'the worker to be reforked after the job');
      await b.define('pid', () => process.pid);
      const fresh = await within(b.submit<number>('pid'), 10_000, "B's job on the fresh worker");
      assert.notEqual(fresh, before[0]);
    } finally {
      await a.close();
      await b.close();
      await server.stop();
    }
  });
});
