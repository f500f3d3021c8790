/** Starting our kernel process directly (no Jupyter): a fresh connection file, free ports, a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, writeConnectionFile, type ConnectionInfo } from './connection.js';
import { YOUNG_GENERATION_FLAGS } from '../runtime/v8-flags.js';
import { withMallocTunables } from '../runtime/malloc-tunables.js';

export const KERNEL_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const STDERR_KEPT = 64 * 1024;

export interface LaunchedKernel {
  info: ConnectionInfo;
  child: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** The last part of what the kernel wrote to stderr. */
  stderr(): string;
  /** SIGKILL if still running; removes the connection file. */
  kill(): Promise<void>;
}

export async function launchKernel(options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<LaunchedKernel> {
  const dir = await mkdtemp(join(tmpdir(), 'tsgather-kernel-'));
  const [shell_port, iopub_port, stdin_port, control_port, hb_port] = await freePorts(5);
  const info: ConnectionInfo = {
    transport: 'tcp',
    ip: '127.0.0.1',
    shell_port,
    iopub_port,
    stdin_port,
    control_port,
    hb_port,
    key: randomBytes(32).toString('hex'),
    signature_scheme: 'hmac-sha256',
    kernel_name: 'tsgather',
  };
  const connectionFile = join(dir, 'kernel.json');
  await writeConnectionFile(connectionFile, info);
  const child = spawn(process.execPath, [...YOUNG_GENERATION_FLAGS, KERNEL_MAIN, connectionFile], {
    cwd: options.cwd,
    env: withMallocTunables(options.env ?? process.env),
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_KEPT);
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  void exited.then(() => rm(dir, { recursive: true, force: true }));
  return {
    info,
    child,
    exited,
    stderr: () => stderr,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
