/**
 * A simulated compute server: what `tsgather server --connect <controller>` says and answers on its
 * links to controllers, for a pool of simulated workers (sim-worker.ts) instead of processes. Many
 * live in one process (sim-process.ts), so one small machine can present hundreds of servers to a
 * real controller.
 *
 * It speaks through the project's own modules, not a copy: the links are protocol/link-sockets.ts
 * (CURVE when given keys), every head is built by protocol/messages.ts, the handshake checks
 * PROTOCOL_VERSION, and the sessions, their weights and shares are server/sessions.ts. What it
 * leaves out: job timeouts (a job runs its whole time), output, a worker's memory ceiling, drain,
 * and resizing the pool when a controller asks for ?workers=N.
 */
import os from 'node:os';
import pino from 'pino';
import {
  describeError,
  LinkSockets,
  mayComplainTo,
  PROTOCOL_VERSION,
  MAX_MESSAGE_BYTES,
  readHead,
  readJson,
  toController,
  joinJson,
  type ControllerToServer,
  type JobRun,
  type KeyPair,
  type ServerInfo,
  type ServerToWorker,
  type WorkerInfo,
} from '../../../protocol/index.js';
import type { ControllerLink } from '../../../server/controller-links.js';
import { Sessions } from '../../../server/sessions.js';
import { USAGE_REPORT_MS } from '../../../server/worker-usage.js';
import type { ResultBatch } from '../../../server/result-batch.js';
import { SimWorker, type WorkerHost } from './sim-worker.js';
import type { Ticker } from './ticker.js';

/** A controller silent this long is no longer in session (as server/controller-links.ts). */
const SILENT_CONTROLLER_MS = 10_000;
/** Spares start this long after every worker is up (as server/worker-pool.ts), and load in SPARE_LOAD_MS. */
const SPARE_DELAY_MS = 500;
const SPARE_LOAD_MS = 300;
/** Fake process ids start here: above Linux's largest pid, so nobody can mistake one for a real process. */
const FAKE_PID_BASE = 5_000_000;

let nextFakePid = FAKE_PID_BASE;
export const fakePid = () => nextFakePid++;

export interface SimServerOptions {
  id: string;
  workers: number;
  /** The module of functions the workers preload (sim-functions.js). */
  module: string;
  /** How long a replacement worker takes to come up after a refresh: drawn uniformly from [low, high] ms. */
  reforkMs: [number, number];
  /** With keys: this server's pair and the controller's public key (Z85), as `--key-file` and `--controller-key`. */
  curve?: { keyPair: KeyPair; controllerKey: string };
  labels?: string[];
  ticker: Ticker;
  /** Milliseconds of lateness its workers dropped (see sim-worker.ts). */
  lagged(ms: number): void;
}

export class SimServer {
  readonly info: ServerInfo;
  private readonly sockets = new LinkSockets(() => {});
  private readonly links = new Map<string, ControllerLink>();
  private readonly workers = new Map<number, SimWorker>();
  private readonly sessions: Sessions;
  private readonly host: WorkerHost;
  private nextW = 1;
  private spares = { ready: 0, starting: 0 };
  private spareTimer?: NodeJS.Timeout;
  private usage = new Map<string, number>();
  private usageTimer?: NodeJS.Timeout;
  /** Gone quiet (a machine frozen or cut off): it reads nothing and sends nothing. */
  private silent = false;
  /** Ids of jobs lost with it: those it held when it went quiet, and those sent to it since. */
  readonly lost: number[] = [];

  constructor(private readonly options: SimServerOptions) {
    this.info = { id: options.id, host: os.hostname(), pid: fakePid(), functions: [], ...(options.labels?.length ? { labels: [...options.labels].sort() } : {}) };
    this.host = {
      ticker: options.ticker,
      sendResults: (w, tag, batch) => this.sendResults(w, tag, batch),
      used: (tag, ms) => this.used(tag, ms),
      lagged: options.lagged,
    };
    this.sessions = new Sessions({
      toEveryWorker: (tag, head) => {
        for (const worker of this.workers.values()) this.toWorker(worker, tag, head);
      },
      toWorker: (w, tag, head) => {
        const worker = this.workers.get(w);
        if (worker) this.toWorker(worker, tag, head);
      },
      sessions: () => this.inSession(),
      pool: () => ({ size: this.workers.size, resize: () => {} }),
      log: () => silentLogger,
      options: () => ({ exclusive: false }),
    });
  }

  /** Starts its workers (before it dials, as a real server's are ready before it is). */
  async prepare(): Promise<void> {
    const starting: Array<Promise<unknown>> = [];
    for (let i = 0; i < this.options.workers; i++) starting.push(this.addWorker());
    await Promise.all(starting);
    this.info.functions = this.workers.values().next().value?.functions ?? [];
    this.spares = { ready: this.options.workers, starting: 0 };
  }

  /** Dials every controller: it joins each on every (re)connection. */
  connect(controllers: string[]): void {
    for (const endpoint of controllers) this.dial(endpoint);
  }

  /** Listens for controllers that dial it (as `--bind tcp://127.0.0.1:0`); resolves with the endpoint bound. */
  async listen(): Promise<string> {
    const [endpoint] = await this.sockets.bindRouter<ControllerLink>({
      addresses: ['tcp://127.0.0.1:0'],
      peers: this.links,
      prefix: 'r',
      newPeer: (tag, _routingId, send) => ({ tag, greeted: false, send: (message) => (this.silent ? undefined : send(message)) }),
      isIdle: (peer) => !peer.greeted && peer.tag.startsWith('r'),
      receive: (link, message) => this.receive(link, message),
      malformed: () => {},
    });
    return endpoint!;
  }

  get workerCount(): number {
    return this.workers.size;
  }

  /** Goes quiet for good: what its workers held is lost, and so is whatever comes to it from now on. */
  silence(): void {
    this.silent = true;
    clearTimeout(this.spareTimer);
    clearTimeout(this.usageTimer);
    for (const worker of this.workers.values()) {
      this.lost.push(...worker.unansweredIds());
      worker.stop();
    }
  }

  close(): void {
    this.silence();
    this.sockets.close(0);
  }

  private dial(endpoint: string): void {
    const tag = `d${this.links.size + 1}`;
    const link: ControllerLink = { tag, greeted: false, send: () => {} };
    this.links.set(tag, link);
    const send = this.sockets.dial({
      endpoint,
      options: { routingId: this.info.id },
      curve: this.options.curve ? { keyPair: this.options.curve.keyPair, serverKey: this.options.curve.controllerKey } : undefined,
      handshakes: { keyRefused: () => {}, mismatch: () => {}, failed: () => {} },
      connected: () => {
        link.greeted = false;
        link.send(toController({ t: 'join', v: PROTOCOL_VERSION, server: this.info }));
      },
      receive: (message) => this.receive(link, message),
      malformed: () => {},
    });
    link.send = (message) => {
      if (!this.silent) send(message);
    };
  }

  /** The gate every message passes (as server/controller-links.ts), then what a greeted controller asks for (as server/server.ts). */
  private receive(link: ControllerLink, message: Buffer[]): void {
    if (this.silent) return this.dropped(message);
    link.heardAt = Date.now();
    let head: ControllerToServer;
    try {
      head = readHead<ControllerToServer>(message[0]);
    } catch (error) {
      return this.complain(link, describeError(error).message);
    }
    if (head.t === 'hello') return this.hello(link, head);
    if (head.t === 'refused') return;
    if (!link.greeted) return this.complain(link, `'${String(head.t)}' before hello; send hello with protocol version ${PROTOCOL_VERSION} first`);
    try {
      switch (head.t) {
        case 'jobs':
        case 'define': {
          const worker = this.workers.get(head.w);
          // The controller's view is stale: tell it the worker is gone so that it requeues.
          if (!worker) return link.send(toController({ t: 'worker-down', w: head.w, pid: -1, cause: 'crash', code: null, signal: null }));
          return head.t === 'jobs' ? worker.jobs(link.tag, message) : worker.define(link.tag, message[1]);
        }
        case 'ping':
          return link.send(toController({ t: 'pong', n: head.n, sessions: this.sessions.shares(this.inSession(), link) }));
        case 'command':
          return this.command(link, head.id, head.cmd);
        case 'bye':
          link.greeted = false;
          this.sessions.forget(link.tag);
          return;
        default:
          return this.complain(link, `unknown message type '${String((head as { t: unknown }).t)}'`);
      }
    } catch (error) {
      this.complain(link, describeError(error).message);
    }
  }

  private hello(link: ControllerLink, { v: version, controller, weight }: Extract<ControllerToServer, { t: 'hello' }>): void {
    if (version !== PROTOCOL_VERSION) return this.complain(link, `protocol version ${JSON.stringify(version)} refused: this server speaks version ${PROTOCOL_VERSION}`, 'refused');
    link.greeted = true;
    link.complaints = 0;
    link.controller = String(controller);
    this.sessions.opened(link, weight);
    const shared = this.shared(link);
    link.send(toController({ t: 'welcome', v: PROTOCOL_VERSION, server: this.info, workers: this.list(), size: this.workers.size, maxFrame: MAX_MESSAGE_BYTES, shared }));
    for (const worker of this.workers.values()) link.send(toController({ t: 'worker-up', w: worker.w, pid: worker.pid, functions: worker.functions }));
    link.send(toController({ t: 'spares', ...this.spares }));
    if (shared) this.sessions.announce();
  }

  private command(link: ControllerLink, id: number, cmd: string): void {
    if (cmd === 'refresh' && this.shared(link)) {
      // Shared: each worker goes once it runs no other session's job (as a real worker's 'retire').
      for (const worker of [...this.workers.values()]) worker.retireWhenFree(link.tag, () => this.replace(worker));
      link.send(toController({ t: 'command-done', id, workers: this.list() }));
    } else if (cmd === 'refresh') {
      const replacements = [...this.workers.values()].map((worker) => this.replace(worker));
      void Promise.all(replacements).then(() => link.send(toController({ t: 'command-done', id, workers: this.list() })));
    } else if (cmd === 'die') {
      this.sessions.end(link);
      link.send(toController({ t: 'command-done', id, workers: [] }));
    } else {
      link.send(toController({ t: 'error', reason: `unknown command '${cmd}'` }));
    }
  }

  /** Kills a worker (its jobs are the controller's to rerun) and brings up its successor after a refork time. */
  private async replace(worker: SimWorker): Promise<void> {
    if (this.workers.get(worker.w) !== worker) return;
    worker.stop();
    this.workers.delete(worker.w);
    this.broadcast(toController({ t: 'worker-down', w: worker.w, pid: worker.pid, cause: 'refresh', code: null, signal: 'SIGKILL' }));
    if (this.spares.ready > 0) this.setSpares({ ready: this.spares.ready - 1, starting: this.spares.starting });
    const [low, high] = this.options.reforkMs;
    await new Promise((resolve) => setTimeout(resolve, low + Math.random() * (high - low)));
    if (this.silent) return;
    await this.addWorker();
    if (this.workers.size === this.options.workers) this.replenishSpares();
  }

  private async addWorker(): Promise<SimWorker> {
    const worker = new SimWorker(this.nextW++, fakePid(), this.host);
    await worker.preload(this.options.module);
    this.workers.set(worker.w, worker);
    this.sessions.workerUp(worker.w, this.inSession());
    this.broadcast(toController({ t: 'worker-up', w: worker.w, pid: worker.pid, functions: worker.functions }));
    return worker;
  }

  /** Spares load again after a refresh, as a real pool's do. */
  private replenishSpares(): void {
    clearTimeout(this.spareTimer);
    this.spareTimer = setTimeout(() => {
      this.setSpares({ ready: this.spares.ready, starting: this.options.workers - this.spares.ready });
      this.spareTimer = setTimeout(() => this.setSpares({ ready: this.options.workers, starting: 0 }), SPARE_LOAD_MS);
    }, SPARE_DELAY_MS);
  }

  private setSpares(counts: { ready: number; starting: number }): void {
    this.spares = counts;
    this.broadcast(toController({ t: 'spares', ...counts }));
  }

  private toWorker(worker: SimWorker, tag: string, head: ServerToWorker): void {
    if (head.t === 'session') worker.setWeight(tag, head.weight);
    else if (head.t === 'forget') worker.forget(tag);
  }

  private sendResults(w: number, tag: string, batch: ResultBatch): void {
    const link = this.links.get(tag);
    if (!link?.greeted) return; // results for a controller that is gone are dropped
    link.send(toController({ t: 'results', w }, batch.rows.bytes(), joinJson(batch.values), JSON.stringify(batch.out), ...batch.bins));
  }

  /** Run time per session, put into the shares every USAGE_REPORT_MS rather than per job. */
  private used(tag: string, ms: number): void {
    this.usage.set(tag, (this.usage.get(tag) ?? 0) + ms);
    this.usageTimer ??= setTimeout(() => {
      this.usageTimer = undefined;
      this.sessions.record([...this.usage]);
      this.usage = new Map();
    }, USAGE_REPORT_MS);
  }

  private broadcast(message: ReturnType<typeof toController>): void {
    for (const link of this.links.values()) if (link.greeted) link.send(message);
  }

  private list(): WorkerInfo[] {
    return [...this.workers.values()].map(({ w, pid }) => ({ w, pid }));
  }

  private *inSession(): Generator<ControllerLink> {
    const since = Date.now() - SILENT_CONTROLLER_MS;
    for (const link of this.links.values()) if (link.greeted && (link.heardAt ?? 0) >= since) yield link;
  }

  /** Whether a controller other than `link` is in session. */
  private shared(link: ControllerLink): boolean {
    for (const other of this.inSession()) if (other !== link) return true;
    return false;
  }

  private complain(link: ControllerLink, reason: string, type: 'error' | 'refused' = 'error'): void {
    if (mayComplainTo(link)) link.send(toController({ t: type, reason }));
  }

  /** A message that reached it after it went quiet: the jobs in it are lost too. */
  private dropped(message: Buffer[]): void {
    try {
      if (readHead<ControllerToServer>(message[0]).t !== 'jobs') return;
      for (const [first, count] of readJson<JobRun[]>(message[1], 'job runs')) for (let i = 0; i < count; i++) this.lost.push(first + i);
    } catch {
      // not a well-formed jobs message: nothing to count
    }
  }
}

const silentLogger = pino({ level: 'silent' });
