/** Pid files for `tsgather server --daemon`, `server stop` and `server status`. */
import { readFileSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import os from 'node:os';

/** Where `--pidfile` points when it is not given. */
export const DEFAULT_PIDFILE = resolve(os.tmpdir(), `tsgather-server-${process.getuid?.() ?? 'user'}.pid`);

/** Where a server with this pid file writes its sessions and shares (see server/status-file.ts). */
export function statusFileOf(pidfile: string): string {
  return `${pidfile.replace(/\.pid$/, '')}.status.json`;
}

export class PidfileError extends Error {
  override name = 'PidfileError';
}

/** The pid recorded in the file, or undefined when there is no file or it holds no pid. */
export function readPid(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** True while `pid` is a live tsgather process (not a zombie, not an unrelated process that reused the pid). */
export function isServerProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/^\d+ \(.*\) [ZX]/.test(stat)) return false;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.some((arg) => /tsgather|cli[\\/]main\.js$/.test(arg)) && cmdline.includes('server');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    return signalable(pid); // no /proc (macOS): fall back to "some process has this pid"
  }
}

function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running server recorded in the pid file, if any. */
export function runningPid(path: string): number | undefined {
  const pid = readPid(path);
  return pid !== undefined && isServerProcess(pid) ? pid : undefined;
}

/** Records this process in the pid file; refuses when a live server already holds it (a stale file is replaced). */
export function claimPidfile(path: string): void {
  const holder = runningPid(path);
  if (holder !== undefined && holder !== process.pid) throw new PidfileError(`a server is already running with pid ${holder} (pid file ${path})`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${process.pid}\n`);
}

/** Removes the pid file if it still names this process. */
export function releasePidfile(path: string): void {
  try {
    if (readPid(path) === process.pid) unlinkSync(path);
  } catch {
    // already gone: nothing to release
  }
}

/** Resolves true once `pid` is gone, false if it is still running after `timeoutMs`. No event exists for a non-child's exit, so this polls /proc. */
export async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isServerProcess(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}
