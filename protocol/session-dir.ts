/**
 * Where named sessions live (spawnScatterGather's `session`), and what their state files say.
 *
 * Each user has one private directory, `<tmp>/tsgather-sessions-<uid>` (or $TSGATHER_SESSIONS_DIR),
 * mode 0700, refused when it is a symlink, another user's, or open to others. In it each session
 * has a directory of its own, also 0700: its controller's ipc socket (`s.sock`), its state
 * (`state.json`) and its controller's log (`controller.log`). Another user can neither reach the
 * socket (they cannot enter the directory) nor find the session by name (they look in their own).
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRunning, pidNamespace } from './ipc-endpoint.js';

/** A session's name: it names a directory and travels in heads, so it stays short and plain. */
export const SESSION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$/;
/** Bumped when the state file, or the meaning of a session's caller↔controller messages, changes: a caller attaches only to its own format. */
export const SESSION_FORMAT = 1;
/** Unix socket paths are limited to about 107 bytes; some systems allow 104. */
const MAX_SOCKET_PATH = 104;

/** The controller-level options a session was started with (keys left out): what a later caller's options are compared with. */
export type SessionSettings = Record<string, unknown>;

export interface SessionState {
  format: number;
  name: string;
  /** The controller's pid; while `starting`, the pid of the caller starting it. */
  pid: number;
  /** That process's start time (clock ticks after boot): a pid reused by another process is not taken for it. */
  startTicks?: number;
  /** The pid namespace `pid` means something in. */
  pidNamespace: string;
  /** Written by the caller that starts the session, until its controller replaces it. */
  starting?: boolean;
  /** ISO time the session started. */
  started: string;
  /** A detached session with nothing outstanding ends after this long. */
  idleMs: number;
  endpoint: string;
  log: string;
  /** The caller attached now (absent while detached). */
  attachedPid?: number;
  settings: SessionSettings;
}

export interface SessionPaths {
  home: string;
  dir: string;
  /** ipc:// endpoint the controller binds. */
  endpoint: string;
  state: string;
  log: string;
}

export function checkSessionName(name: unknown): string {
  if (typeof name !== 'string' || !SESSION_NAME.test(name)) {
    throw new TypeError(`session must be a name of 1 to 48 letters, digits, '.', '_' or '-', starting with a letter or digit (got ${typeof name === 'string' ? `'${name}'` : String(name)})`);
  }
  return name;
}

/** This user's sessions directory, made (mode 0700) if missing; throws if it is not private to this user. */
export function sessionsHome(): string {
  const base = process.env.TMPDIR && process.env.TMPDIR.length < 60 ? process.env.TMPDIR : '/tmp';
  const home = process.env.TSGATHER_SESSIONS_DIR || join(base, `tsgather-sessions-${process.getuid?.() ?? 'user'}`);
  ensurePrivateDir(home);
  return home;
}

/** Makes `dir` (mode 0700) unless it exists; either way, refuses one that is not a directory of this user's alone. */
export function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stat = lstatSync(dir);
  const uid = process.getuid?.();
  const refuse = (why: string) => new Error(`refusing to keep tsgather sessions in ${dir}: ${why}`);
  if (!stat.isDirectory()) throw refuse('it is not a directory (a symlink?)');
  if (uid !== undefined && stat.uid !== uid) throw refuse(`it belongs to uid ${stat.uid}, not to you (uid ${uid})`);
  if ((stat.mode & 0o077) !== 0) throw refuse(`others may use it (mode ${(stat.mode & 0o777).toString(8)}); it must be 0700`);
}

export function sessionPaths(name: string): SessionPaths {
  const home = sessionsHome();
  const dir = join(home, checkSessionName(name));
  const socket = join(dir, 's.sock');
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new Error(`session '${name}': its socket path ${socket} is longer than a unix socket allows (${MAX_SOCKET_PATH} bytes); use a shorter name, or a shorter TSGATHER_SESSIONS_DIR`);
  }
  return { home, dir, endpoint: `ipc://${socket}`, state: join(dir, 'state.json'), log: join(dir, 'controller.log') };
}

/** The state in `dir`, or nothing when there is none (or it cannot be read). */
export function readSessionState(dir: string): SessionState | undefined {
  try {
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as SessionState;
    return typeof state === 'object' && state !== null && typeof state.pid === 'number' ? state : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces the state file at once (written aside, then renamed), so a reader never sees half of it. */
export function writeSessionState(dir: string, state: SessionState): void {
  const aside = join(dir, `.state-${process.pid}.json`);
  writeFileSync(aside, JSON.stringify(state), { mode: 0o600 });
  renameSync(aside, join(dir, 'state.json'));
}

/** When process `pid` started, in clock ticks after boot (field 22 of /proc/<pid>/stat); nothing without /proc. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the process a state names still runs (the same process, not a later one given its pid). */
export function stateProcessAlive(state: Pick<SessionState, 'pid' | 'startTicks' | 'pidNamespace'>): boolean {
  if (state.pidNamespace !== pidNamespace()) return true; // cannot tell from here: taken to run
  if (!isRunning(state.pid)) return false;
  return state.startTicks === undefined || processStartTicks(state.pid) === state.startTicks;
}

/** The state a process writes about itself. */
export function selfIdentity(): Pick<SessionState, 'pid' | 'startTicks' | 'pidNamespace'> {
  return { pid: process.pid, startTicks: processStartTicks(process.pid), pidNamespace: pidNamespace() };
}

/**
 * Removes a session's directory: moved aside first (a rename is atomic), so that a caller starting
 * the session anew meanwhile makes a fresh one rather than losing it half-way. With `ifPid`, only
 * when the state still names that process (or names none).
 */
export function removeSessionDir(dir: string, ifPid?: number): void {
  if (ifPid !== undefined) {
    const state = readSessionState(dir);
    if (state && state.pid !== ifPid) return;
  }
  const aside = join(dir, '..', `.gone-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    renameSync(dir, aside);
  } catch {
    return; // gone already
  }
  rmSync(aside, { recursive: true, force: true });
}

export interface ListedSession {
  name: string;
  dir: string;
  state?: SessionState;
  alive: boolean;
}

/** This user's sessions, by name; a directory without a live process is listed as not alive. */
export function listSessions(): ListedSession[] {
  const home = sessionsHome();
  return readdirSync(home)
    .filter((name) => SESSION_NAME.test(name))
    .sort()
    .map((name) => {
      const dir = join(home, name);
      const state = readSessionState(dir);
      return { name, dir, state, alive: state !== undefined && stateProcessAlive(state) };
    });
}
