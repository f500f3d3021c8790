/**
 * The controller: the hub between the caller and the compute servers. It owns the job queues, the
 * per-worker credit windows, retries and the registry of shipped definitions, and wires its rooms
 * together: the cluster's state (cluster.ts), the links (server-links.ts), scheduling decisions
 * (scheduling.ts), recovery of lost jobs (recovery.ts), the ledger of results (job-ledger.ts) and
 * status (status-report.ts). It never decodes a job's arguments or a result's value, and it tracks
 * jobs by the run (see job-chunks.ts), not one by one.
 */
import {
  ProtocolError,
  checkOffsets,
  checkPartsHead,
  readUint32s,
  textFrame,
  toCaller,
  toServer,
  type CallerToController,
  type ControllerToCaller,
  type DefinitionSpec,
  type DownCause,
  type Frames,
  type JobRun,
  type LinkMessage,
  type Deliver,
  type ServerToController,
} from '../protocol/index.js';
import type { EventDetail, EventKind, Status } from '../protocol/status.js';
import type { LinkSecurity } from '../protocol/link-security.js';
import { carries, Cluster, type ServerSlot, type WorkerSlot } from './cluster.js';
import { checkedFold, makeChunk, runFrames, type Run } from './job-chunks.js';
import { JobLedger, frameLimitOf, megabytes } from './job-ledger.js';
import { Recovery, downText } from './recovery.js';
import { Scheduler } from './scheduling.js';
import { ServerLinks, type SessionEvents } from './server-links.js';
import { buildStatus } from './status-report.js';
import { ScatteredData } from './scattered-data.js';
import { SharedData } from './shared-data.js';

export interface ControllerOptions {
  controllerId: string;
  /** Where to accept servers that dial in. */
  listen: string[];
  /** Servers to dial. */
  urls: string[];
  /** Keys for the links (default: none, which only loopback links allow). */
  security?: LinkSecurity;
  /** Times a job is retried after a worker died while running it alone. */
  retries: number;
  /** Times a job is retried after running past its timeout (default 0: reported as JobTimeoutError). */
  timeoutRetries?: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** This controller's share of shared servers' workers against other sessions' (default 1). */
  weight?: number;
  /** Sends to the caller. */
  toCaller(message: LinkMessage<ControllerToCaller>): void;
  /** False while no more jobs may go out (a session holding as many results as it may): pumpAll() once it turns true. */
  mayDispatch?(): boolean;
  log(level: 'info' | 'warn' | 'error', message: string, detail?: Record<string, unknown>): void;
}

export class Controller {
  private readonly cluster = new Cluster();
  private readonly ledger: JobLedger;
  private readonly scheduler: Scheduler;
  private readonly recovery: Recovery;
  private readonly links: ServerLinks;
  /** Values pushed to every worker (sg.push). */
  readonly shared: SharedData;
  readonly scattered: ScatteredData;
  private readonly commandWaiters = new Map<number, { servers: Set<ServerSlot>; resolve: () => void }>();
  private nextCommand = 1;
  private pumpPending = false;
  private placementCheck?: { at: number; timer: NodeJS.Timeout };
  /** What the links pass on from servers. */
  private readonly session: SessionEvents = {
    message: (server, head, message) => this.fromServer(server, head, message),
    lateResults: (info, w, message) => this.ledger.results(info, undefined, w, message),
    joined: (server) => this.shared.joined(server),
    lost: (server, cause, reason) => this.lose(server, cause, reason),
    event: (kind, detail) => this.event(kind, detail),
  };

  constructor(private readonly options: ControllerOptions) {
    this.ledger = new JobLedger(this.cluster, options.toCaller);
    this.scheduler = new Scheduler(this.cluster, this.ledger);
    this.ledger.requeue = (run) => this.scheduler.requeueFront(run);
    this.recovery = new Recovery({ retries: options.retries, timeoutRetries: options.timeoutRetries ?? 0 }, this.ledger.chunks, this.scheduler, this.ledger, this.ledger.counters);
    this.links = new ServerLinks(options, this.cluster, this.session);
    this.shared = new SharedData(this.cluster);
    this.scattered = new ScatteredData(this.cluster);
  }

  get listening(): string[] {
    return this.links.listening;
  }

  start(): Promise<void> {
    return this.links.start();
  }

  /** Dials a server; the handshake is retried on every heartbeat until it answers. */
  connect(url: string): void {
    this.links.connect(url);
  }

  /** Links the compute server running in this process (see ServerLinks.linkInProcess). */
  linkInProcess(attach: (deliver: Deliver, onDeliverError: (error: unknown) => void) => (message: Frames) => void): void {
    this.links.linkInProcess(attach);
  }

  // ---- from servers in session ---------------------------------------------------------------

  private fromServer(server: ServerSlot, head: ServerToController, message: Buffer[]): void {
    switch (head.t) {
      case 'pong':
        if (Array.isArray(head.sessions)) {
          server.sessions = head.sessions;
          server.shared = head.sessions.length > 1;
        }
        return;
      case 'worker-up':
        if (!Number.isInteger(head.w) || !Array.isArray(head.functions) || !head.functions.every((f) => typeof f === 'string'))
          throw new ProtocolError('worker-up needs a whole-number w and a list of function names');
        return this.workerUp(server, head.w, head.pid, head.functions);
      case 'worker-down':
        return this.workerDown(
          server,
          head.w,
          head.cause,
          `worker ${head.w} (pid ${head.pid}) on ${server.info.host} ${downText(head)}`,
          head.cause === 'timeout' ? { job: head.job, limitMs: head.limitMs } : undefined,
        );
      case 'spares':
        if (!Number.isInteger(head.ready) || !Number.isInteger(head.starting) || head.ready < 0 || head.starting < 0) throw new ProtocolError('spares needs whole-number ready and starting counts');
        server.spares = { ready: head.ready, starting: head.starting };
        return this.event('spares', { server: server.info.id, host: server.info.host, ready: head.ready, starting: head.starting });
      case 'worker-output':
        return this.options.toCaller(toCaller({ t: 'output', job: null, server: server.info.id, host: server.info.host, w: head.w, stream: head.stream }, textFrame(message[1], 'output')));
      case 'command-done':
        return this.commandDone(head.id, server);
      case 'parts': {
        checkPartsHead(head); // a NaN n would break the caller's count of parts already given
        // Parts of a job already answered (a rerun's, say) are late: the caller has them or never will.
        const chunk = this.ledger.chunks.find(head.job);
        if (!chunk || chunk.done[head.job - chunk.first]) return;
        return this.options.toCaller(toCaller({ t: 'parts', job: head.job, n: head.n, count: head.count }, ...message.slice(1)));
      }
      case 'collected':
        return this.scattered.collected(server, head.id, head.parts, message.slice(1));
      case 'results': {
        const slot = server.workers.get(head.w);
        this.ledger.results(server.info, slot, head.w, message);
        if (slot) this.pump(slot);
        return;
      }
      default:
        throw new ProtocolError(`unexpected message type from server ${server.info.id}`);
    }
  }

  private lose(server: ServerSlot, cause: DownCause, reason: string): void {
    if (server.link.server === server) server.link.server = undefined;
    this.options.log('warn', 'server lost', { server: server.info.id, reason });
    // Each worker's jobs are requeued first, and everyone pumped once after: not once per worker (O(workers²) for a large server).
    for (const slot of [...server.workers.values()]) this.workerDown(server, slot.w, cause, `server ${server.info.id} was lost (${reason})`, undefined, false);
    this.scattered.lost(server);
    for (const [id, waiter] of this.commandWaiters) {
      waiter.servers.delete(server);
      if (waiter.servers.size === 0) {
        this.commandWaiters.delete(id);
        waiter.resolve();
      }
    }
    this.event('server-down', { server: server.info.id, host: server.info.host, reason });
    this.pumpAll(); // jobs that only the lost server could take may now have to fail elsewhere
  }

  private event<K extends EventKind>(kind: K, detail: EventDetail<K>): void {
    this.options.toCaller(toCaller({ t: 'event', kind, detail } as ControllerToCaller));
  }

  private workerUp(server: ServerSlot, w: number, pid: number, functions: string[]): void {
    const slot = this.cluster.addWorker(server, w, pid, functions);
    if (!slot) return;
    if (this.cluster.definitions.size > 0) this.sendDefinitions(slot, [...this.cluster.definitions.values()]);
    this.event('worker-up', { server: server.info.id, host: server.info.host, w, pid });
    this.pump(slot);
  }

  /** `pump`: false when the caller pumps everyone itself once it is done. */
  private workerDown(server: ServerSlot, w: number, cause: DownCause, description: string, timedOut?: { job?: number; limitMs?: number }, pump = true): void {
    const slot = this.cluster.removeWorker(server, w);
    if (!slot) return;
    this.event('worker-down', { server: server.info.id, host: server.info.host, w, pid: slot.pid, cause, ...(timedOut ?? {}) });
    if (timedOut) this.recovery.timedOut(slot, timedOut.job, timedOut.limitMs, description);
    this.recovery.workerLost(slot, cause, description);
    if (pump) this.pumpSoon();
  }

  // ---- to workers ---------------------------------------------------------------------------

  pumpAll(): void {
    for (const slot of this.cluster.readyWorkers()) {
      if (!this.scheduler.hasWork) return; // the rest would get nothing: with thousands of workers, not walking them matters
      this.pump(slot);
    }
  }

  /**
   * Pumps everyone once the messages at hand are handled: a refresh of a thousand workers brings a
   * thousand worker-downs at once, and a pumpAll after each walked every worker each time.
   */
  private pumpSoon(): void {
    if (this.pumpPending) return;
    this.pumpPending = true;
    setImmediate(() => {
      this.pumpPending = false;
      this.pumpAll();
    });
  }

  /** Fills one worker's window with one batch. */
  private pump(slot: WorkerSlot): void {
    if (this.options.mayDispatch?.() === false) return;
    const batch = this.scheduler.nextBatch(slot);
    if (batch) this.dispatch(slot, batch);
  }

  private dispatch(slot: WorkerSlot, runs: Run[]): void {
    const now = Date.now();
    const meta: JobRun[] = [];
    const out: Uint8Array[] = [];
    for (const run of runs) {
      run.dispatchedAt = now;
      slot.inflight.push(run);
      slot.inflightCount += run.end - run.start;
      const part = runFrames(run);
      meta.push(part.meta);
      for (const frame of part.frames) out.push(frame);
    }
    slot.server.link.send(toServer({ t: 'jobs', w: slot.w }, JSON.stringify(meta), ...out));
  }

  /**
   * Sends definitions in as few messages as fit the server's frame limit. One that passes it alone is
   * not sent (it would cost the link its connection, and be resent with every reconnection): its jobs
   * go to servers that took it, or fail here when none did, until a definition that fits replaces it.
   */
  private sendDefinitions(slot: WorkerSlot, all: DefinitionSpec[]): void {
    const server = slot.server;
    const defs = all.filter((def) => !def.labels || carries(server, def.labels));
    if (defs.length === 0) return;
    const send = (texts: string[]) => server.link.send(toServer({ t: 'define', w: slot.w }, `{"defs":[${texts.join(',')}]}`));
    const wrapping = '{"defs":[]}'.length;
    let group: string[] = [];
    let bytes = wrapping;
    for (const def of defs) {
      const text = JSON.stringify(def);
      const size = Buffer.byteLength(text, 'utf8');
      if (wrapping + size > server.maxFrame) {
        const reason = `the definition of '${def.name}' (v${def.version}) is ${megabytes(size)}; ${frameLimitOf(server)}`;
        if (server.unsendable.get(def.name) !== reason) this.event('definition-too-large', { server: server.info.id, host: server.info.host, fn: def.name, version: def.version, reason });
        server.unsendable.set(def.name, reason);
        continue;
      }
      server.unsendable.delete(def.name);
      const comma = group.length > 0 ? 1 : 0;
      if (bytes + comma + size > server.maxFrame) {
        send(group); // never empty: a definition alone fits (checked above)
        group = [];
        bytes = wrapping + size;
      } else {
        bytes += comma + size;
      }
      group.push(text);
    }
    if (group.length > 0) send(group);
  }

  // ---- from the caller ----------------------------------------------------------------------

  /** A caller's 'jobs' message (see CallerToController): checked, then queued as one chunk without parsing a value. */
  addJobs(head: Extract<CallerToController, { t: 'jobs' }>, message: Buffer[]): void {
    const { first, count, fn, labels, placementMs } = head;
    const timeoutMs = head.timeoutMs ?? 0;
    if (!Number.isSafeInteger(first) || first < 1 || !Number.isInteger(count) || count < 1 || typeof fn !== 'string' || typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      throw new ProtocolError('jobs needs a whole first id ≥ 1, a count ≥ 1, a function name and a timeout ≥ 0');
    }
    if ((labels !== undefined && !isLabelList(labels)) || (placementMs !== undefined && !(typeof placementMs === 'number' && placementMs > 0))) {
      throw new ProtocolError('jobs labels must be a list of strings, and placementMs a number > 0');
    }
    const packed = { values: message[1] ?? Buffer.alloc(0), offsets: readUint32s(message[2], count + 1, 'job offsets') };
    checkOffsets(packed);
    const bins = message.slice(4);
    const nbins = message[3]?.length ? readUint32s(message[3], count, 'binary frame counts') : undefined;
    const named = nbins ? nbins.reduce((a, b) => a + b, 0) : 0;
    if (named !== bins.length) throw new ProtocolError(`jobs name ${named} binary frames, but ${bins.length} came with them`);
    const placeBy = placementMs ? Date.now() + placementMs : 0;
    const chunk = makeChunk(first, fn, timeoutMs, this.scheduler.statsFor(fn), packed, nbins, bins, { labels, placeBy, stream: head.stream === true, fold: checkedFold(head.fold) });
    this.ledger.add(chunk);
    this.scheduler.enqueue(chunk);
    this.pumpAll();
    if (chunk.placeBy) this.placementCheckBy(chunk.placeBy);
  }

  /** The caller took parts of streaming job `job` up to `n`: its worker hears, wherever it runs now. */
  credit(job: number, n: number): void {
    const chunk = this.ledger.chunks.find(job);
    if (!chunk) return;
    const index = job - chunk.first;
    for (const slot of this.cluster.readyWorkers()) {
      if (slot.inflight.some((run) => run.chunk === chunk && run.start <= index && index < run.end)) {
        return slot.server.link.send(toServer({ t: 'credit', w: slot.w, job, n }));
      }
    }
  }

  define(spec: DefinitionSpec): void {
    if (spec.labels !== undefined && !isLabelList(spec.labels)) throw new ProtocolError('definition labels must be a list of strings');
    this.cluster.definitions.set(spec.name, spec);
    for (const slot of this.cluster.readyWorkers()) this.sendDefinitions(slot, [spec]);
    this.pumpAll();
  }

  /** Looks for jobs out of placement time at `when` (or sooner, if already due sooner). */
  private placementCheckBy(when: number): void {
    if (this.placementCheck && this.placementCheck.at <= when) return;
    clearTimeout(this.placementCheck?.timer);
    const timer = setTimeout(
      () => {
        this.placementCheck = undefined;
        const next = this.scheduler.expirePlacements(Date.now());
        if (next) this.placementCheckBy(next);
      },
      Math.max(0, when - Date.now()),
    );
    this.placementCheck = { at: when, timer };
  }

  /** Sends a command to every server and resolves when each has carried it out (or was lost). */
  command(cmd: 'refresh' | 'die'): Promise<void> {
    const servers = new Set(this.cluster.servers());
    if (servers.size === 0) return Promise.resolve();
    const id = this.nextCommand++;
    return new Promise((resolve) => {
      this.commandWaiters.set(id, { servers, resolve });
      for (const server of servers) server.link.send(toServer({ t: 'command', id, cmd }));
    });
  }

  private commandDone(id: number, server: ServerSlot): void {
    const waiter = this.commandWaiters.get(id);
    if (!waiter) return;
    waiter.servers.delete(server);
    if (waiter.servers.size === 0) {
      this.commandWaiters.delete(id);
      waiter.resolve();
    }
  }

  status(): Status {
    return buildStatus({
      controllerId: this.options.controllerId,
      listening: this.links.listening,
      cluster: this.cluster,
      waiting: this.scheduler.waiting,
      unplaceable: this.scheduler.unplaceable,
      ledger: this.ledger,
      shared: [...this.shared.list(), ...this.scattered.list()],
    });
  }

  close(): Promise<void> {
    clearTimeout(this.placementCheck?.timer);
    return this.links.close();
  }
}

function isLabelList(labels: unknown): labels is string[] {
  return Array.isArray(labels) && labels.every((label) => typeof label === 'string');
}
