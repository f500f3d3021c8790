/** What fleet.ts and a simulated-server process (sim-process.ts) say to each other over its IPC channel. */
import type { KeyPair } from '../../../protocol/keys.js';

export interface SimServerSpec {
  id: string;
  workers: number;
  labels?: string[];
  /** Listen for controllers to dial it (`--bind`) rather than dial them. */
  bind?: boolean;
}

export type SimRequest =
  /** Start these servers, each dialling every controller; reforkMs: a refreshed worker comes up after [low, high] ms. */
  | { t: 'start'; seq: number; servers: SimServerSpec[]; controllers: string[]; reforkMs: [number, number]; curve?: { keyPair: KeyPair; controllerKey: string } }
  /** Server `id` goes quiet for good. */
  | { t: 'silence'; seq: number; id: string }
  /** Ids of the jobs lost with quiet server `id`. */
  | { t: 'lost'; seq: number; id: string }
  /** Milliseconds of lateness its workers dropped so far. */
  | { t: 'lag'; seq: number }
  | { t: 'stop'; seq: number };

export type SimReply =
  /** dialAt: when its servers started dialling (epoch ms); endpoints: where those that listen are bound, by id. */
  | { t: 'started'; seq: number; dialAt: number; workers: number; endpoints: Record<string, string> }
  | { t: 'silenced'; seq: number; at: number; held: number }
  | { t: 'lost'; seq: number; ids: number[] }
  | { t: 'lag'; seq: number; lagMs: number }
  | { t: 'stopped'; seq: number }
  | { t: 'failed'; seq: number; reason: string };
