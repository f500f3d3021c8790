/** `tsgather cluster up|down` against a real sshd on loopback: servers started over ssh run real jobs. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runningPid } from '../cli/pidfile.js';
import { spawnScatterGather } from '../caller/index.js';
import { runCli } from './cli-helpers.js';
import { alive, cli, stopDaemonsIn } from './helpers.js';
import { startSshd, type TestSshd } from './sshd.js';

describe('cluster up/down over ssh', { timeout: 120_000 }, () => {
  let dir: string;
  let sshd: TestSshd;
  let sshFlags: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsgather-ssh-'));
    sshd = await startSshd(dir);
    // The same client flags, as `cluster` takes them.
    sshFlags = ['-i', join(dir, 'client_key'), '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes'];
  });
  after(async () => {
    await stopDaemonsIn(dir);
    await sshd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const host = () => `${sshd.user}@127.0.0.1:${sshd.port}`;
  const remote = () => ['--remote-command', `${process.execPath} ${cli}`];

  test('up starts a server daemon over ssh, a controller runs jobs on it, down stops it', async () => {
    const pidfile = join(dir, 'server.pid');
    const up = await runCli(['cluster', 'up', host(), ...sshFlags, ...remote(), '--pidfile', pidfile, '--bind', 'tcp://127.0.0.1:0', '--workers', '2']);
    assert.equal(up.code, 0, up.stderr);
    const urls = up.stdout.trim().split('\n');
    assert.equal(urls.length, 1);
    assert.match(urls[0]!, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.match(up.stderr, /use: await spawnScatterGather\(\["tcp:\/\/127\.0\.0\.1:\d+"\]\)/);
    const pid = runningPid(pidfile);
    assert.ok(pid !== undefined, 'the server recorded a live pid');

    const sg = await spawnScatterGather(urls, { echo: false });
    try {
      await sg.define('square', (x: number) => x * x);
      assert.deepEqual(await sg.map('square', [[[3]], [[4]], [[5]]]), [9, 16, 25]);
      const status = await sg.status();
      const server = status.servers[0] as { id: string; workers: unknown[] };
      assert.ok(server.id.endsWith(`-${pid}`), `jobs ran on the server started over ssh (${server.id}, pid ${pid})`);
      assert.equal(server.workers.length, 2);
    } finally {
      await sg.close();
    }

    // Hosts may also come from a file (comments and blank lines skipped).
    const hostfile = join(dir, 'hosts');
    await writeFile(hostfile, `# the test machine\n\n${host()}   # over loopback\n`);
    const down = await runCli(['cluster', 'down', '--hostfile', hostfile, ...sshFlags, ...remote(), '--pidfile', pidfile]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stderr, new RegExp(`stopped server pid ${pid}`));
    assert.equal(alive(pid), false);

    const again = await runCli(['cluster', 'down', host(), ...sshFlags, ...remote(), '--pidfile', pidfile]);
    assert.equal(again.code, 3, 'nothing was running');
    assert.match(again.stderr, /not running/);
  });

  test('key flags reach the remote server, and the printed URL carries its public key', async () => {
    const keys = join(dir, 'keys');
    for (const name of ['server', 'controller']) assert.equal((await runCli(['keys', 'generate', '--out', keys, '--name', name])).code, 0);
    const pidfile = join(dir, 'keyed.pid');
    const up = await runCli([
      'cluster',
      'up',
      host(),
      ...sshFlags,
      ...remote(),
      '--pidfile',
      pidfile,
      '--bind',
      'tcp://127.0.0.1:0',
      '--workers',
      '1',
      '--key-file',
      join(keys, 'server.key'),
      '--authorized-keys',
      join(keys, 'controller.pub'),
    ]);
    assert.equal(up.code, 0, up.stderr);
    const [url] = up.stdout.trim().split('\n');
    assert.match(url!, /^tcp:\/\/127\.0\.0\.1:\d+\?key=[0-9a-f]{64}$/);
    try {
      const sg = await spawnScatterGather([url!], { echo: false, keyFile: join(keys, 'controller.key') });
      try {
        await sg.define('double', (x: number) => 2 * x);
        assert.equal(await sg.submit('double', [21]), 42, 'a job ran over the encrypted link');
      } finally {
        await sg.close();
      }
    } finally {
      assert.equal((await runCli(['cluster', 'down', host(), ...sshFlags, ...remote(), '--pidfile', pidfile])).code, 0);
    }
  });

  test('a host that cannot be reached fails up with exit 1 and names the host', async () => {
    const unreachable = `${sshd.user}@127.0.0.1:1`;
    const up = await runCli(['cluster', 'up', unreachable, ...sshFlags, ...remote(), '--pidfile', join(dir, 'never.pid'), '--bind', 'tcp://127.0.0.1:0']);
    assert.equal(up.code, 1);
    assert.equal(up.stdout, '');
    assert.match(up.stderr, /127\.0\.0\.1:1: failed \(ssh exit 255\)/);
    assert.match(up.stderr, /1 of 1 host\(s\) did not start a server/);
  });

  test("a remote command that does not exist fails up with exit 1 and the remote shell's reason", async () => {
    const up = await runCli(['cluster', 'up', host(), ...sshFlags, '--remote-command', '/nonexistent/tsgather', '--pidfile', join(dir, 'bad.pid'), '--bind', 'tcp://127.0.0.1:0']);
    assert.equal(up.code, 1, up.stderr);
    assert.match(up.stderr, /failed \(ssh exit 127\).*\/nonexistent\/tsgather: (No such file or directory|not found)/);
    assert.equal(runningPid(join(dir, 'bad.pid')), undefined);
  });
});
