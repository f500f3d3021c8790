/**
 * ipc:// endpoints of this process's own. Kept apart from transport.ts so that importing it does not load ZeroMQ.
 *
 * Socket files live in a directory of this process's own, mode 0700, so no other user can connect
 * to them. (Linux's abstract socket names would leave nothing on disk, but any process on the
 * machine could connect to them.) The directory goes when the process exits; a process killed
 * with SIGKILL cannot remove it, so its name says whose it is — `tsg-<pid namespace>-<pid>-…` —
 * and the next tsgather process to make one, or the controller child when its caller is gone,
 * removes the directories of processes that no longer run.
 */
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const PREFIX = 'tsg-';
const NAME = /^tsg-(\d+)-(\d+)-[A-Za-z0-9]{6}$/;

let socketDir: string | undefined;

/**
 * A fresh ipc:// endpoint for this process to bind, in this process's socket directory. Paths
 * stay short: unix socket paths are limited to ~107 bytes.
 */
export function ipcEndpoint(tag: string): string {
  if (!socketDir) {
    const base = process.env.TMPDIR && process.env.TMPDIR.length < 60 ? process.env.TMPDIR : '/tmp';
    removeDeadSocketDirs(base);
    const dir = mkdtempSync(join(base, `${PREFIX}${pidNamespace()}-${process.pid}-`));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    socketDir = dir;
  }
  return `ipc://${socketDir}/${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}.sock`;
}

/** Removes the socket directory holding `endpoint` if the process that made it no longer runs. */
export function removeSocketDirIfOwnerGone(endpoint: string): void {
  if (!endpoint.startsWith('ipc://')) return;
  const dir = dirname(endpoint.slice('ipc://'.length));
  if (isDeadOwnersDir(basename(dir), pidNamespace())) rmSync(dir, { recursive: true, force: true });
}

/** The socket directories in `base` whose processes (in this pid namespace, of this user) no longer run. */
function removeDeadSocketDirs(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  const namespace = pidNamespace();
  const uid = process.getuid?.();
  for (const name of names) {
    if (!name.startsWith(PREFIX) || !isDeadOwnersDir(name, namespace)) continue;
    const dir = join(base, name);
    try {
      if (uid === undefined || lstatSync(dir).uid === uid) rmSync(dir, { recursive: true, force: true });
    } catch {
      // Gone already, or not ours to remove.
    }
  }
}

function isDeadOwnersDir(name: string, namespace: string): boolean {
  const match = NAME.exec(name);
  return match !== null && match[1] === namespace && !isRunning(Number(match[2]));
}

/**
 * The pid namespace's inode: a pid means the same process only within one namespace (containers
 * may share a temp directory with the host), so directories of other namespaces are left alone.
 */
export function pidNamespace(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
  } catch {
    return '0';
  }
}

/** Whether this machine has Linux's /proc, where a process's state can be read. */
const HAS_PROC = existsSync('/proc/self/stat');

/** Whether `pid` is a live process: a zombie (killed, not yet reaped) counts as gone. */
export function isRunning(pid: number): boolean {
  if (HAS_PROC) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.charAt(stat.lastIndexOf(')') + 2);
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
