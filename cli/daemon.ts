/**
 * `tsgather server --daemon`: starts the same command again, detached, with its output going to a
 * log file, and returns once the detached server says it is ready (or has failed to start).
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { YOUNG_GENERATION_FLAGS } from '../runtime/v8-flags.js';
import { withMallocTunables } from '../runtime/malloc-tunables.js';

const cliScript = fileURLToPath(new URL('./main.js', import.meta.url));

/** Set in the detached server's environment: report readiness over IPC, then live on alone. */
export const DAEMON_ENV = 'TSGATHER_DAEMON_CHILD';

export type DaemonReport = { t: 'ready'; pid: number; endpoints: string[]; publicKey?: string } | { t: 'failed'; reason: string };

export const isDaemonChild = () => process.env[DAEMON_ENV] === '1' && typeof process.send === 'function';

/** Called by the detached server once it serves (or cannot): tells the launcher and lets go of it. */
export function reportToLauncher(report: DaemonReport): Promise<void> {
  return new Promise((resolve) => {
    process.send!(report, undefined, {}, () => {
      process.disconnect?.();
      resolve();
    });
  });
}

export interface Daemonized {
  pid: number;
  endpoints: string[];
  /** The server's CURVE public key (hex), when it has keys. */
  publicKey?: string;
  logFile: string;
}

/** Starts `tsgather server <args>` detached and waits for its report. Rejects with the reason (and the log's tail) if it fails. */
export async function daemonize(serverArgs: string[], logFile: string, timeoutMs = 60_000): Promise<Daemonized> {
  mkdirSync(dirname(logFile), { recursive: true });
  const log = openSync(logFile, 'a');
  // The server relays every message between controllers and workers: it gets the engine's young generation too.
  const child = spawn(process.execPath, [...YOUNG_GENERATION_FLAGS, cliScript, 'server', ...serverArgs], {
    detached: true,
    stdio: ['ignore', log, log, 'ipc'],
    env: { ...withMallocTunables(process.env), [DAEMON_ENV]: '1' },
  });
  closeSync(log);
  try {
    const report = await new Promise<DaemonReport>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not report ready within ${timeoutMs / 1000} s`)), timeoutMs);
      child.once('message', (message: DaemonReport) => {
        clearTimeout(timer);
        resolve(message);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the server exited during start-up (${signal ? `signal ${signal}` : `code ${code}`})`));
      });
    });
    if (report.t === 'failed') throw new Error(report.reason);
    child.unref();
    child.disconnect?.();
    return { pid: report.pid, endpoints: report.endpoints, publicKey: report.publicKey, logFile };
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    throw new Error(`${(error as Error).message}\n${tail(logFile)}`.trimEnd());
  }
}

function tail(path: string, lines = 15): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    return text ? `last lines of ${path}:\n${text}` : '';
  } catch {
    return '';
  }
}
