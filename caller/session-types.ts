/** The public shapes of named sessions (spawnScatterGather's `session`; see docs/sessions.md). */
export type { SessionDetached } from '../protocol/messages.js';

/** A named session as its caller sees it: `sg.session`. */
export interface SessionInfo {
  name: string;
  /** True when this call attached to a session that was running; false when it started the session. */
  attached: boolean;
  /** The session controller's process id. */
  pid: number;
  /** When the session started (ISO time). */
  started: string;
  /** A detached session with nothing queued or running ends after this long (ms). */
  idleMs: number;
  /** The session's private directory: its socket, state file and the controller's log. */
  dir: string;
  /** The controller's log (its stdout and stderr). */
  log: string;
  /** On attaching: jobs of earlier callers whose results come to this one (held, or still to finish). */
  owed: number;
  /** On attaching: of those, results that had finished and were held for this caller. */
  held: number;
  /** Options of this call that the running session did not take: they are fixed when a session starts. */
  ignoredOptions: string[];
}

/** `attachOnly` was given and no live session has that name. */
export class SessionNotFoundError extends Error {
  override name = 'SessionNotFoundError';

  constructor(readonly session: string) {
    super(`no session named '${session}' is running (for this user); leave out attachOnly to start it`);
  }
}

/** Another process is attached to the session: one caller at a time. */
export class SessionInUseError extends Error {
  override name = 'SessionInUseError';

  constructor(
    readonly session: string,
    readonly pid: number,
  ) {
    super(`session '${session}' is in use by process ${pid}; detach it there (await sg.detach()) or end that process, then attach again`);
  }
}

/** This ScatterGather detached from its session: attach again to go on. */
export class SessionDetachedError extends Error {
  override name = 'SessionDetachedError';

  constructor(readonly session: string) {
    super(`this ScatterGather detached from session '${session}'; attach again with spawnScatterGather({ session: '${session}' })`);
  }
}
