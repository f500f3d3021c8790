/**
 * The compute-server daemon: listens for controllers (--bind) and/or dials out to them
 * (--connect), keeps a pool of worker processes, and relays job and result batches between
 * controllers and workers by reading only each message's small head. It never runs user code.
 */
import * as zmq from 'zeromq';
import os from 'node:os';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import {
  PROTOCOL_VERSION,
  ProtocolError,
  describeError,
  ipcEndpoint,
  linkOptions,
  MAX_MESSAGE_BYTES,
  Outbox,
  readHead,
  receiveLoop,
  relayed,
  toController,
  toWorker,
  type Deliver,
  type KeyPair,
  type Frames,
  type WorkerToServer,
  type ServerInfo,
  type ServerToController,
  type ServerToWorker,
  type ControllerToServer,
  type ServerStatusSnapshot,
  CLOSE_FLUSH_MS,
} from '../protocol/index.js';
import { WorkerPool, type WorkerProcess } from './worker-pool.js';
import { ControllerLinks, type ControllerLink, type SessionHead } from './controller-links.js';
import { Sessions } from './sessions.js';
import { StatusFile } from './status-file.js';
import { SessionData } from './session-data.js';
import { StartupFailures } from './startup-failures.js';
import { checkServerSecurity } from './security-check.js';

export { InsecureConfigurationError } from './security-check.js';

export { WorkersFailedError } from './startup-failures.js';

export interface ServerOptions {
  bind?: string[];
  connect?: string[];
  workers?: number;
  module?: string;
  name?: string;
  /** What this server carries (`gpu`, `site=lab2`): jobs asking for labels run only on servers carrying every one. */
  labels?: string[];
  workerHeapMb?: number;
  /** Most workers a controller may ask for with ?workers=N (default: 4 per core). */
  maxWorkers?: number;
  /** Resident-memory ceiling per worker (MB): a worker over it is recycled between jobs. */
  workerMaxRssMb?: number;
  /** Started workers kept waiting to replace ones that go, so a refresh takes milliseconds (default: one per worker; 0 for none). */
  spareWorkers?: number;
  /** This server's CURVE key pair: every controller link is encrypted and authenticated. */
  keyPair?: KeyPair;
  /** Public keys (Z85) of the controllers admitted on --bind addresses. */
  authorizedKeys?: string[];
  /** Public key (Z85) of the controllers this server dials with --connect. */
  controllerKey?: string;
  /** Allow links beyond this machine without keys (logged as a warning). */
  insecure?: boolean;
  /** Messages from controllers larger than this are dropped, with their connection (default MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
  /**
   * Serves one controller alone (the embedded server, `--exclusive`): its die stops the workers.
   * Otherwise the server is shared, and a die ends only that controller's session.
   */
  exclusive?: boolean;
  /** Write this server's sessions, shares and workers here once a second (beside its pid file), for `tsgather server status`. */
  statusFile?: string;
  /** Workers already started (spawnWorker) on `workerEndpoint`, with this server's worker options, for the pool to take first. */
  prestarted?: { workerEndpoint: string; workers: ChildProcess[] };
  logger: Logger;
}

export class ComputeServer {
  readonly info: ServerInfo;
  private readonly log: Logger;
  private readonly workerSocket = new zmq.Router(linkOptions({ mandatory: true }));
  private readonly workerOutbox = new Outbox(this.workerSocket, (error, message) => this.undeliverable(error, message));
  private readonly controllers: ControllerLinks;
  private readonly pool: WorkerPool;
  /** What sessions pushed and scattered to the workers. */
  private readonly data = new SessionData({
    toWorker: (message) => this.workerOutbox.post(message),
    toEveryWorker: (tag, head, ...rest) => this.toEveryWorker(tag, head, ...rest),
    toController: (tag, message) => this.controllers.get(tag)?.send(message),
    workers: () => this.pool.list().map(({ w }) => w),
  });
  private readonly sessions = new Sessions({
    toEveryWorker: (tag, head) => this.toEveryWorker(tag, head),
    toWorker: (w, tag, head) => this.workerOutbox.post(toWorker(w, tag, head)),
    sessions: () => this.controllers.sessions(),
    pool: () => this.pool,
    log: () => this.log,
    options: () => this.options,
  });
  private closed = false;
  private statusFile?: StatusFile;
  /** While draining: told of each worker that has drained. */
  private drained?: (w: number) => void;

  constructor(private readonly options: ServerOptions) {
    this.log = options.logger;
    const workerEndpoint = options.prestarted?.workerEndpoint ?? ipcEndpoint('workers');
    this.info = {
      id: options.name ?? `${os.hostname()}-${process.pid}`,
      host: os.hostname(),
      pid: process.pid,
      functions: [],
      ...(options.labels?.length ? { labels: [...new Set(options.labels)].sort() } : {}),
    };
    this.controllers = new ControllerLinks({
      info: this.info,
      keyPair: options.keyPair,
      authorizedKeys: options.authorizedKeys,
      controllerKey: options.controllerKey,
      maxMessageBytes: options.maxMessageBytes,
      log: this.log,
      hello: (link, head) => this.hello(link, head),
      message: (link, head, message) => this.fromController(link, head, message),
      malformed: (from, error) => this.malformed(from, error),
    });
    this.pool = new WorkerPool(
      options.workers ?? os.availableParallelism(),
      workerEndpoint,
      {
        up: (worker) => this.workerUp(worker),
        down: (worker, cause, code, signal, detail) => {
          if (cause === 'timeout') this.log.warn({ w: worker.w, pid: worker.pid, ...detail }, 'job ran past its timeout: worker killed');
          if (cause === 'recycle') this.log.info({ w: worker.w, pid: worker.pid, ...detail }, 'worker over its memory ceiling recycled');
          if (cause === 'crash') this.log.warn({ w: worker.w, pid: worker.pid, code, signal }, 'worker died');
          this.startup.down(worker.w);
          this.controllers.broadcast({ t: 'worker-down', w: worker.w, pid: worker.pid, cause, code, signal, ...detail });
          // Draining, a dead worker has nothing left to finish (scancel signals every process of a Slurm job).
          this.drained?.(worker.w);
          this.data.workerDown(worker.w);
        },
        output: (worker, stream, text) => {
          this.startup.output(worker.w, worker.ready, stream, text);
          this.controllers.broadcast({ t: 'worker-output', w: worker.w, stream }, text);
        },
        failing: (reason) => {
          this.startup.reason = reason;
          this.log.error({ reason, stderr: this.startup.last }, 'workers keep dying');
          this.controllers.broadcast({ t: 'error', reason });
        },
        spareDied: (pid, code, signal, stderr) => this.log.warn({ pid, code, signal, stderr }, 'spare worker died while it waited'),
        sparesChanged: (counts) => this.controllers.broadcast({ t: 'spares', ...counts }),
      },
      options,
      options.prestarted?.workers,
    );
    this.workerEndpoint = workerEndpoint;
  }

  private readonly workerEndpoint: string;
  private readonly startup = new StartupFailures();

  /** Endpoints actually bound (with wildcard ports resolved). */
  get endpoints(): string[] {
    return this.controllers.bound;
  }

  async start(): Promise<void> {
    const exposed = ComputeServer.checkSecurity(this.options);
    if (exposed.length > 0) this.log.warn({ exposed }, 'INSECURE: serving links beyond this machine without encryption or authentication (--insecure): anyone who can reach them can run code here');
    await this.workerSocket.bind(this.workerEndpoint);
    void receiveLoop(
      this.workerSocket,
      (message) => this.fromWorker(message),
      (error) => this.malformed('worker', error),
    );
    this.pool.resize(this.pool.size);
    if (this.options.bind?.length) await this.controllers.listen(this.options.bind);
    for (const url of this.options.connect ?? []) this.controllers.dial(url);
    await this.pool.allReady();
    if (this.startup.reason && this.pool.size === 0) {
      // No worker could start (a --module that does not load, say): serving nothing is no service.
      await this.close();
      throw this.startup.error();
    }
    this.info.functions = [...new Set(this.pool.list().flatMap(({ w }) => this.pool.workers.get(w)?.functions ?? []))];
    if (this.options.statusFile) this.statusFile = new StatusFile(this.options.statusFile, () => this.snapshot());
    this.log.info({ server: this.info.id, bind: this.controllers.bound, connect: this.options.connect ?? [], workers: this.pool.size }, 'server ready');
  }

  /** Refuses links that would let anyone on the network run code here; returns those --insecure lets through. */
  static checkSecurity(options: ServerOptions): string[] {
    return checkServerSecurity(options);
  }

  /**
   * Links the controller of this same process (the embedded cluster): `deliver` takes what this
   * server sends it, and reports to `onDeliverError` what it could not take; the function returned
   * takes what the controller sends. The controller greets as over a socket.
   */
  linkInProcess(deliver: Deliver, onDeliverError: (error: unknown) => void): (message: Frames) => void {
    return this.controllers.linkInProcess(deliver, onDeliverError);
  }

  /** What a greeted controller asks for (its hello, and the gate before it, are ControllerLinks'). */
  private fromController(link: ControllerLink, head: SessionHead, message: Buffer[]): void {
    switch (head.t) {
      case 'jobs':
        if (this.drained) return; // stopping: the controller runs them elsewhere once it hears the goodbye
        return this.relayToWorker(link, head.w, message);
      case 'define':
        return this.relayToWorker(link, head.w, message);
      case 'credit':
        return this.relayToWorker(link, head.w, message);
      case 'put':
      case 'drop':
      case 'scatter':
      case 'collect':
        return this.data.handle(link.tag, head, message);
      case 'ping':
        return link.send(toController({ t: 'pong', n: head.n, sessions: this.sessions.shares(this.controllers.sessions(), link) }));
      case 'command':
        return void this.command(link, head.id, head.cmd);
      case 'bye':
        link.greeted = false;
        this.sessions.forget(link.tag);
        this.data.forget(link.tag);
        this.log.info({ controller: link.controller }, 'controller said goodbye');
        return;
      default: {
        const type = String((head as { t: unknown }).t);
        if (this.controllers.complain(link, `unknown message type '${type}'`)) this.log.warn({ type }, 'unknown message type dropped');
      }
    }
  }

  private hello(link: ControllerLink, { v: version, controller, workers, weight }: Extract<ControllerToServer, { t: 'hello' }>): void {
    if (this.closed) return; // it said goodbye: a welcome now would have controllers count it up again
    if (version !== PROTOCOL_VERSION) {
      const reason = `protocol version ${JSON.stringify(version)} refused: this server speaks version ${PROTOCOL_VERSION}`;
      if (this.controllers.complain(link, reason, 'refused')) this.log.warn({ controller, version }, 'controller refused');
      return;
    }
    link.greeted = true;
    link.complaints = 0;
    link.controller = String(controller);
    this.sessions.opened(link, weight);
    this.sessions.sizePool(link, workers);
    this.log.info({ controller: link.controller }, 'controller greeted');
    // Frames pass on to the workers, whose links take at most MAX_MESSAGE_BYTES.
    const maxFrame = Math.min(this.options.maxMessageBytes ?? MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES);
    const shared = this.controllers.inSession(link);
    link.send(toController({ t: 'welcome', v: PROTOCOL_VERSION, server: this.info, workers: this.pool.list(), size: this.pool.size, maxFrame, shared }));
    // Workers already up are announced through worker-up so the controller learns their functions.
    for (const { w } of this.pool.list()) {
      const worker = this.pool.workers.get(w)!;
      link.send(toController({ t: 'worker-up', w, pid: worker.pid, functions: worker.functions }));
    }
    link.send(toController({ t: 'spares', ...this.pool.spareCounts() }));
    if (shared) this.sessions.announce();
  }

  private relayToWorker(link: ControllerLink, w: number, message: Buffer[]): void {
    const worker = this.pool.workers.get(w);
    if (!worker?.ready) {
      // The controller's view is stale: tell it the worker is gone so it requeues.
      link.send(toController({ t: 'worker-down', w, pid: worker?.pid ?? -1, cause: 'crash', code: null, signal: null }));
      return;
    }
    this.workerOutbox.post([`w${w}`, link.tag, ...message]);
  }

  private async command(link: ControllerLink, id: number, cmd: string): Promise<void> {
    if (cmd === 'refresh' && !this.options.exclusive && this.controllers.inSession(link)) {
      // Shared with others: each worker is reforked once it runs no other controller's job (it says 'retire').
      this.toEveryWorker(link.tag, { t: 'refresh' });
      this.log.info({ controller: link.controller }, "refresh asked for: each worker goes once it runs no other controller's job");
      link.send(toController({ t: 'command-done', id, workers: this.pool.list() }));
    } else if (cmd === 'refresh') {
      const started = performance.now();
      const workers = await this.pool.refresh();
      this.log.info({ ms: Math.round(performance.now() - started), workers: workers.length }, 'workers refreshed');
      link.send(toController({ t: 'command-done', id, workers }));
    } else if (cmd === 'die') {
      if (this.options.exclusive) {
        await this.pool.stop('die');
        this.log.info('workers stopped on die');
      } else {
        this.sessions.end(link);
        this.data.forget(link.tag);
      }
      link.send(toController({ t: 'command-done', id, workers: [] }));
    } else {
      link.send(toController({ t: 'error', reason: `unknown command '${cmd}'` }));
    }
  }

  /** Whether a controller is in session (for --idle-exit). */
  inSession(): boolean {
    return this.controllers.inSession();
  }

  /** Sends `head` to every worker up, on behalf of the controller link `tag` ('' for the server itself). */
  private toEveryWorker(tag: string, head: ServerToWorker, ...rest: Frames): void {
    for (const { w } of this.pool.list()) this.workerOutbox.post(toWorker(w, tag, head, ...rest));
  }

  private fromWorker([routingId, to, ...message]: Buffer[]): void {
    if (!to || to.length === 0) {
      const head = readHead<WorkerToServer>(message[0]);
      switch (head.t) {
        case 'ready':
          return this.pool.markReady(head.w, head.pid, head.functions);
        case 'running':
          return this.pool.jobStarted(head.w, head.job, head.timeoutMs);
        case 'ran':
          return this.pool.jobEnded(head.w);
        case 'recycle':
          return this.pool.recycle(head.w, head.rssMb);
        case 'drained':
          return this.drained?.(head.w);
        case 'retire':
          return this.pool.refreshWorker(head.w);
        case 'collected':
          return this.data.collected(head.w, head.id, head.plain === true, head.missing === true, message.slice(1));
        case 'usage':
          if (!Array.isArray(head.ms)) throw new ProtocolError('usage needs a list of [controller, ms]');
          return this.sessions.record(head.ms.filter((entry) => Array.isArray(entry) && this.controllers.get(entry[0]) !== undefined));
        default:
          throw new ProtocolError(`unexpected '${head.t}' from worker`);
      }
    }
    const link = this.controllers.get(to.toString());
    if (!link) {
      this.log.warn({ worker: routingId?.toString() }, 'results for a controller that is gone dropped');
      return;
    }
    link.send(relayed<ServerToController>(message)); // a worker's 'results', passed on unread
  }

  private workerUp(worker: WorkerProcess): void {
    this.sessions.workerUp(worker.w, this.controllers.sessions());
    this.data.workerUp(worker.w);
    for (const name of worker.functions) if (!this.info.functions.includes(name)) this.info.functions.push(name);
    this.controllers.broadcast({ t: 'worker-up', w: worker.w, pid: worker.pid, functions: worker.functions });
  }

  private undeliverable(error: Error, message: Frames): void {
    // mandatory routing: the worker went away between our check and the send; its death is reported separately.
    this.log.warn({ worker: String(message[0]), err: error.message }, 'message to worker not delivered');
  }

  private malformed(from: string, error: unknown): void {
    this.log.warn({ from, err: describeError(error).message }, 'malformed message dropped');
  }

  /**
   * Stops gracefully (SIGTERM, SIGUSR1 before a batch job's wall-time): takes no further job, lets
   * the running ones finish within `ms`, then closes. Its goodbye makes every controller run what
   * it had queued here elsewhere, uncharged; a job still running at the deadline goes the same way.
   */
  async drain(ms: number): Promise<void> {
    if (this.closed || this.drained) return;
    const waiting = new Set(this.pool.list().map(({ w }) => w));
    this.log.info({ workers: waiting.size, ms }, 'draining');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.drained = (w) => {
        if (waiting.delete(w) && waiting.size === 0) done();
      };
      if (waiting.size === 0) return done();
      this.toEveryWorker('', { t: 'drain' });
    });
    await this.close();
  }

  /** Its sessions and their shares, its workers and labels (what `tsgather server status` shows). */
  snapshot(): ServerStatusSnapshot {
    const { id, host, pid, labels } = this.info;
    return { server: id, host, pid, labels: labels ?? [], workers: this.pool.size, sessions: this.sessions.shares(this.controllers.sessions()), at: Date.now() };
  }

  async close(reason = 'server shutting down'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.statusFile?.close();
    this.controllers.broadcast({ t: 'server-bye', reason });
    await this.pool.stop('shutdown');
    // A controller that is gone, or never let us in (a refused key), cannot take what is queued for it: wait only a moment.
    await this.controllers.flushed(CLOSE_FLUSH_MS);
    this.workerSocket.close();
    this.controllers.close(200); // let the goodbye reach the wire
  }
}
