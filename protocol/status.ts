/**
 * What the controller reports of itself: status() and the events it sends the caller. Defined
 * once, here: the controller builds them, the caller passes them on, and the kernel renders them.
 */
import type { DownCause, SpareCounts } from './messages.js';

export interface WorkerStatus {
  w: number;
  pid: number;
  busy: boolean;
  inflight: number;
  done: number;
  failed: number;
  /** Time since the worker came up: its jobs per second are (done + failed) / upMs * 1000. */
  upMs: number;
}

/** A server the controller is linked to, or one at a URL it has not reached (then only `url`, `connected: false` and why). */
export interface ServerStatus {
  id?: string;
  host?: string;
  url?: string;
  connected: boolean;
  refused?: string;
  handshakeError?: string;
  lastSeenMs?: number;
  functions?: string[];
  /** Spare workers loaded and waiting (`ready`), and still starting: a refresh or a lost worker promotes one. */
  spares?: SpareCounts;
  workers?: WorkerStatus[];
}

export interface Status {
  controller: string;
  /** Where servers can dial in. */
  listening: string[];
  servers: ServerStatus[];
  /** Workers up, over all servers. */
  workers: number;
  /** Jobs waiting for a worker, and jobs on one. */
  queued: number;
  inflight: number;
  done: number;
  failed: number;
  retried: number;
  timedOut: number;
  duplicatesDropped: number;
  /** Results per second over the last 5 s. */
  ratePerSec: number;
  definitions: Array<{ name: string; version: number }>;
}

interface Place {
  server: string;
  host: string;
}

/** Every event the pool emits as `sg.on('event', ({ kind, detail }) => …)`, by kind. */
export type ControllerEvent =
  | { kind: 'server-up'; detail: Place & { url?: string; workers?: number } }
  | { kind: 'server-down'; detail: Place & { reason: string } }
  | { kind: 'server-refused'; detail: { url?: string; server?: string; reason?: string } }
  | { kind: 'server-handshake-failed'; detail: { url?: string; reason?: string } }
  | { kind: 'server-error'; detail: { server?: string; url?: string; reason: string } }
  | { kind: 'peer-refused'; detail: { address: string; keyFingerprint: string; reason: string } }
  | { kind: 'worker-up'; detail: Place & { w: number; pid: number } }
  | { kind: 'worker-down'; detail: Place & { w: number; pid: number; cause: DownCause; job?: number; limitMs?: number } }
  | { kind: 'spares'; detail: Place & SpareCounts }
  | { kind: 'definition-too-large'; detail: Place & { fn: string; version: number; reason: string } }
  | { kind: 'embedded-server-failed'; detail: { reason: string } }
  | { kind: 'controller-failed'; detail: { reason: string } }
  | { kind: 'caller-message-error'; detail: { reason: string } }
  /** A message from the controller the caller could not read. */
  | { kind: 'bad-message'; detail: { error: string } };

export type EventKind = ControllerEvent['kind'];
export type EventDetail<K extends EventKind> = Extract<ControllerEvent, { kind: K }>['detail'];
