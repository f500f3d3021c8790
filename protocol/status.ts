/**
 * What the controller reports of itself: status() and the events it sends the caller. Defined
 * once, here: the controller builds them, the caller passes them on, and the kernel renders them.
 */
import type { DownCause, SpareCounts } from './messages.js';

export type WorkerStatus = {
  w: number;
  pid: number;
  busy: boolean;
  inflight: number;
  done: number;
  failed: number;
  /** Time since the worker came up: its jobs per second are (done + failed) / upMs * 1000. */
  upMs: number;
};

/** A session (one controller) on a shared server, and its share of the server's worker time over the last few seconds. */
export type SessionShare = {
  controller: string;
  weight: number;
  /** 0 to 1: this session's part of the time the server's workers ran jobs lately. */
  share: number;
  /** Milliseconds of jobs run for it since it joined. */
  busyMs: number;
  /** The session asking (in a controller's status()). */
  you?: boolean;
};

/** What a server writes beside its pid file for `tsgather server status`. */
export type ServerStatusSnapshot = {
  server: string;
  host: string;
  pid: number;
  labels: string[];
  workers: number;
  /** Sessions in session now, with their shares. */
  sessions: SessionShare[];
  /** When it was written (epoch ms). */
  at: number;
};

/** A server the controller is linked to, or one at a URL it has not reached (then only `url`, `connected: false` and why). */
export type ServerStatus = {
  id?: string;
  host?: string;
  url?: string;
  connected: boolean;
  refused?: string;
  handshakeError?: string;
  lastSeenMs?: number;
  functions?: string[];
  labels?: string[];
  /** The sessions on this server and their shares (from its last answer to a heartbeat). */
  sessions?: SessionShare[];
  /** Spare workers loaded and waiting (`ready`), and still starting: a refresh or a lost worker promotes one. */
  spares?: SpareCounts;
  workers?: WorkerStatus[];
};

export type Status = {
  controller: string;
  /** Where servers can dial in. */
  listening: string[];
  servers: ServerStatus[];
  /** Workers up, over all servers. */
  workers: number;
  /** Jobs waiting for a worker, and jobs on one. */
  queued: number;
  /** Of those queued, jobs that ask for labels no connected server carries. */
  unplaceable: number;
  inflight: number;
  done: number;
  failed: number;
  retried: number;
  timedOut: number;
  duplicatesDropped: number;
  /** Results per second over the last 5 s. */
  ratePerSec: number;
  definitions: Array<{ name: string; version: number }>;
  /** Values pushed to every worker (sg.push), with the bytes each holds on every worker. */
  /** Values pushed (sg.push) and arrays scattered (sg.scatter, with their `parts`), with the bytes the controller keeps of each. */
  shared: Array<{ name: string; version: number; bytes: number; parts?: number }>;
};

type Place = {
  server: string;
  host: string;
};

/** An event's detail: the fields named, typed; further fields may come (read as unknown). */
type Detail<T> = T & { [field: string]: unknown };

/** Every event the pool emits as `sg.on('event', ({ kind, detail }) => …)`, by kind. */
export type ControllerEvent =
  /** `workers`: how many the server runs for this controller; `up`: how many of them were up when it joined. */
  | { kind: 'server-up'; detail: Detail<Place & { url?: string; workers?: number; up?: number }> }
  | { kind: 'server-down'; detail: Detail<Place & { reason: string }> }
  | { kind: 'server-refused'; detail: Detail<{ url?: string; server?: string; reason?: string }> }
  | { kind: 'server-handshake-failed'; detail: Detail<{ url?: string; reason?: string }> }
  | { kind: 'server-error'; detail: Detail<{ server?: string; url?: string; reason: string }> }
  | { kind: 'peer-refused'; detail: Detail<{ address: string; keyFingerprint: string; reason: string }> }
  | { kind: 'worker-up'; detail: Detail<Place & { w: number; pid: number }> }
  | { kind: 'worker-down'; detail: Detail<Place & { w: number; pid: number; cause: DownCause; job?: number; limitMs?: number }> }
  | { kind: 'spares'; detail: Detail<Place & SpareCounts> }
  | { kind: 'definition-too-large'; detail: Detail<Place & { fn: string; version: number; reason: string }> }
  | { kind: 'embedded-server-failed'; detail: Detail<{ reason: string }> }
  | { kind: 'controller-failed'; detail: Detail<{ reason: string }> }
  | { kind: 'caller-message-error'; detail: Detail<{ reason: string }> }
  /** A 'part' listener threw on part `n` of `job`: the other parts were still emitted, the job goes on. */
  | { kind: 'part-listener-error'; detail: Detail<{ job: number; n: number; error: string }> }
  /** A message from the controller the caller could not read. */
  | { kind: 'bad-message'; detail: Detail<{ error: string }> };

export type EventKind = ControllerEvent['kind'];
export type EventDetail<K extends EventKind> = Extract<ControllerEvent, { kind: K }>['detail'];
