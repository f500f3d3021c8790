/** Running a command on another machine with the system's `ssh`, as ipcluster's and Dask's SSH launchers do. */
import { spawn } from 'node:child_process';

export interface SshHost {
  /** As written: `[user@]host[:port]`. */
  spec: string;
  /** What ssh dials: `[user@]host`. */
  target: string;
  /** The host name alone, for server URLs. */
  host: string;
  port?: number;
}

export function parseHost(spec: string): SshHost {
  const match = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d+))?$/.exec(spec.trim());
  if (!match) throw new Error(`'${spec}' is not a host: expected [user@]host[:port]`);
  const [, user, host, port] = match;
  const bare = host!.replace(/^\[|\]$/g, '');
  return { spec, target: user ? `${user}@${bare}` : bare, host: bare, port: port ? Number(port) : undefined };
}

/** Hosts from a file: one per line; blank lines and # comments are skipped. */
export function parseHostfile(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/** POSIX shell quoting for the remote side, which ssh hands to the login shell as one string. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export interface SshOptions {
  /** The ssh program (default `ssh`). */
  ssh: string;
  /** `-F` config file. */
  config?: string;
  /** `-i` identity file. */
  identity?: string;
  /** `-o Key=Value` options. */
  options: string[];
}

export interface SshOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `remoteCommand` (a shell snippet) on the host; BatchMode so a password prompt fails instead of hanging. */
export function runOverSsh(host: SshHost, remoteCommand: string, ssh: SshOptions): Promise<SshOutcome> {
  const args = ['-o', 'BatchMode=yes'];
  if (ssh.config) args.push('-F', ssh.config);
  if (ssh.identity) args.push('-i', ssh.identity);
  for (const option of ssh.options) args.push('-o', option);
  if (host.port) args.push('-p', String(host.port));
  args.push(host.target, remoteCommand);
  return new Promise((resolve) => {
    const child = spawn(ssh.ssh, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', (error) => resolve({ code: null, stdout, stderr: `${stderr}could not run ${ssh.ssh}: ${error.message}\n` }));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
