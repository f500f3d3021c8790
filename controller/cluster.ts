/**
 * What the controller knows of its cluster: the links to servers, the server in session on each,
 * their workers and what each holds, which functions ready workers preload, and the definitions
 * shipped. Data and small queries only: when it changes, and what follows, is the controller's.
 */
import type { ControllerToServer, DefinitionSpec, LinkMessage, ServerInfo, SessionShare, SpareCounts } from '../protocol/index.js';
import { removeFromRuns, type Chunk, type Run } from './job-chunks.js';

/** A link to one server, whichever side dialled, in session or not. */
export interface ServerLink {
  key: string;
  send(message: LinkMessage<ControllerToServer>): void;
  /** For links we dialled: what the URL asked for. */
  workers?: number;
  url?: string;
  /** The server in this very process: it cannot go quiet without us, so it is never pinged or timed out. */
  inProcess?: boolean;
  server?: ServerSlot;
  lastHello: number;
  refused?: string;
  /** Why the security handshake keeps failing (a wrong server key, usually), while it does. */
  handshakeError?: string;
  /** The server last in session on this link: results it sends after we gave it up are still used (first result per job wins). */
  known?: ServerInfo;
  /** The server process that said goodbye here: it still answers while it closes, but is not taken back (a new process at the address is). */
  departed?: ServerInfo;
  /** Answers and events for this peer while it is not in session: one that never completes a handshake gets only a few. */
  complaints?: number;
}

/** A server in session. */
export interface ServerSlot {
  info: ServerInfo;
  link: ServerLink;
  workers: Map<number, WorkerSlot>;
  lastSeen: number;
  /** The largest frame the server takes: no run's frame may pass it. */
  maxFrame: number;
  /** Functions whose current definition alone passes maxFrame, so it was not sent: why, by name. Their jobs go elsewhere (see canRun). */
  unsendable: Map<string, string>;
  /** Its spare workers, as it last said. */
  spares: SpareCounts;
  /** The sessions on it and their shares, as its last pong said. */
  sessions?: SessionShare[];
  /** Other sessions are on it too (its welcome or last pong said so): workers' windows are longer (see SHARED_WINDOW_FACTOR). */
  shared: boolean;
}

export interface WorkerSlot {
  server: ServerSlot;
  w: number;
  pid: number;
  functions: string[];
  /** What it has been sent and not answered, in the order it runs them (so results come back in this order). */
  inflight: Run[];
  inflightCount: number;
  /**
   * Jobs it folded into its accumulator (mapReduce onServers) and acknowledged, whose partial has not
   * come yet: out of its window, but still its jobs: they are requeued if it goes (see folded-jobs.ts).
   */
  folded: Run[];
  /** Running a job under suspicion of killing its worker: nothing else goes with it. */
  isolating: boolean;
  done: number;
  failed: number;
  /** When it came up (epoch ms), for its rate in status(). */
  upAt: number;
}

export class Cluster {
  readonly links = new Map<string, ServerLink>();
  readonly definitions = new Map<string, DefinitionSpec>();
  /** How many ready workers preload each function. */
  private readonly providers = new Map<string, number>();
  private ready = 0;

  /** Ready workers over all servers. */
  get workerCount(): number {
    return this.ready;
  }

  /** Puts a server in session on `link`, replacing none: the caller lets go of the one before. */
  openSession(link: ServerLink, info: ServerInfo, maxFrame: number, shared = false): ServerSlot {
    const server: ServerSlot = { info, link, workers: new Map(), lastSeen: Date.now(), maxFrame, unsendable: new Map(), spares: { ready: 0, starting: 0 }, shared };
    link.server = server;
    link.known = info;
    return server;
  }

  /** A worker came up; undefined when it was already known. */
  addWorker(server: ServerSlot, w: number, pid: number, functions: string[]): WorkerSlot | undefined {
    if (server.workers.has(w)) return undefined;
    const slot: WorkerSlot = { server, w, pid, functions, inflight: [], inflightCount: 0, folded: [], isolating: false, done: 0, failed: 0, upAt: Date.now() };
    server.workers.set(w, slot);
    this.ready++;
    for (const fn of functions) this.providers.set(fn, (this.providers.get(fn) ?? 0) + 1);
    return slot;
  }

  /** A worker went; returns it, with what it still held, or undefined when it was not known. */
  removeWorker(server: ServerSlot, w: number): WorkerSlot | undefined {
    const slot = server.workers.get(w);
    if (!slot) return undefined;
    server.workers.delete(w);
    this.ready--;
    for (const fn of slot.functions) this.providers.set(fn, (this.providers.get(fn) ?? 1) - 1);
    return slot;
  }

  *servers(): Generator<ServerSlot> {
    for (const link of this.links.values()) if (link.server) yield link.server;
  }

  *readyWorkers(): Generator<WorkerSlot> {
    for (const link of this.links.values()) {
      if (link.server) yield* link.server.workers.values();
    }
  }

  /** Whether a worker may be given jobs of `fn`: it has fn's definition or preloads it, or no ready worker preloads it (its jobs then fail there, saying so). */
  canRun(slot: WorkerSlot, fn: string): boolean {
    const definition = this.definitions.get(fn);
    // A definition restricted to labels is only on servers carrying them.
    if (definition?.labels && !carries(slot.server, definition.labels)) return false;
    // A server that could not take fn's definition leaves its jobs to servers that did; with none connected, they fail there.
    if (slot.server.unsendable.has(fn)) return !this.definedSomewhere(fn);
    return definition !== undefined || slot.functions.includes(fn) || !this.providers.get(fn);
  }

  /** Whether a server in session carries every label of `labels` and of fn's definition (so that fn's jobs with those labels have somewhere to go). */
  placeable(fn: string, labels: readonly string[] | undefined): boolean {
    const defined = this.definitions.get(fn)?.labels;
    for (const server of this.servers()) if ((!labels || carries(server, labels)) && (!defined || carries(server, defined))) return true;
    return false;
  }

  /** Whether a server in session took fn's current definition. */
  definedSomewhere(fn: string): boolean {
    for (const server of this.servers()) if (!server.unsendable.has(fn)) return true;
    return false;
  }

  /** The version of fn a failure is reported under (0: preloaded, or never defined). */
  versionOf(fn: string): number {
    return this.definitions.get(fn)?.version ?? 0;
  }
}

/** Whether a server declared every one of `labels`. */
export function carries(server: ServerSlot, labels: readonly string[]): boolean {
  const own = server.info.labels;
  if (!own) return labels.length === 0;
  for (const label of labels) if (!own.includes(label)) return false;
  return true;
}

/** Takes one job out of what a worker holds (a result out of order, a timed-out job): the run it was in, or undefined if it holds none. */
export function takeFromInflight(slot: WorkerSlot, chunk: Chunk, index: number): Run | undefined {
  const run = removeFromRuns(slot.inflight, chunk, index);
  if (run) slot.inflightCount--;
  return run;
}
