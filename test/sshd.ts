/**
 * A real OpenSSH server for tests: on 127.0.0.1, a free port, a fresh host key, and one fresh
 * client key authorised for the current user. Fails with the reason when sshd cannot start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { runProgram } from './cli-helpers.js';

const SSHD = ['/usr/sbin/sshd', '/usr/bin/sshd'].find(existsSync);

export interface TestSshd {
  port: number;
  /** ssh client flags that reach this sshd as the current user, with the host key pinned. */
  clientArgs: string[];
  user: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

async function keygen(path: string): Promise<void> {
  const made = await runProgram('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
  if (made.code !== 0) throw new Error(`ssh-keygen failed: ${made.stderr}`);
}

export async function startSshd(dir: string): Promise<TestSshd> {
  if (!SSHD) throw new Error('sshd not found: test/setup.sh installs the Debian openssh-server package (run it as root)');
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege-separation directory
  await keygen(join(dir, 'host_key'));
  await keygen(join(dir, 'client_key'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  const port = await freePort();
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${readFileSync(join(dir, 'host_key.pub'), 'utf8')}`);
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `ListenAddress 127.0.0.1`,
      `Port ${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const proc: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.setEncoding('utf8').on('data', (text: string) => {
      log += text;
      if (/Server listening on 127\.0\.0\.1 port/.test(log)) resolve();
    });
    proc.once('error', (error) => reject(new Error(`sshd could not be run: ${error.message}`)));
    proc.once('exit', (code) => reject(new Error(`sshd exited (code ${code}) before listening:\n${log}`)));
  });
  const clientArgs = [
    '-p',
    String(port),
    '-i',
    join(dir, 'client_key'),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
  ];
  return {
    port,
    clientArgs,
    user: os.userInfo().username,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = once(proc, 'exit');
      proc.kill('SIGTERM');
      await gone;
    },
  };
}
