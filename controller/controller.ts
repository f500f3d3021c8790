/**
 * The controller: owns the links to compute servers, the job queues, the per-worker credit
 * windows, retries and the registry of shipped definitions. It never decodes a job's arguments
 * or a result's value, and it tracks jobs by the run (see job-chunks.ts), not one by one.
 */
import * as zmq from 'zeromq';
import {
  PROTOCOL_VERSION,
  MAX_MESSAGE_BYTES,
  ProtocolError,
  describeError,
  encodeValue,
  frames,
  joinJson,
  checkOffsets,
  readUint32s,
  curveClientOptions,
  curveServerOptions,
  linkOptions,
  Outbox,
  readHead,
  readJson,
  textFrame,
  receiveLoop,
  type OutputRow,
  type ControllerToCaller,
  type DefinitionSpec,
  type DownCause,
  type Frames,
  zap,
  forgetIdlePeers,
  MAX_COMPLAINTS,
  type CallerToController,
  type JobRun,
  type KeyPair,
  type ServerInfo,
  type ServerToController,
  type SpareCounts,
  type Deliver,
} from '../protocol/index.js';
import { Deque } from '../runtime/deque.js';
import { CallerRowWriter, WorkerRows } from '../protocol/rows.js';
import type { EventDetail, EventKind, ServerStatus, Status } from '../protocol/status.js';
import { ChunkIndex, attemptsOf, charge, jobsWithinFrame, largestFrame, makeChunk, openParts, removeFromRuns, runFrames, runOf, type Chunk, type FunctionStats, type Run } from './job-chunks.js';
import { checkListen, serverKeyFor, type LinkSecurity } from '../protocol/link-security.js';
import { parseServerUrl } from '../protocol/server-url.js';

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
  /** Sends to the caller. */
  toCaller(message: Frames): void;
  log(level: 'info' | 'warn' | 'error', message: string, detail?: Record<string, unknown>): void;
}

interface Link {
  key: string;
  send(message: Frames): void;
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

interface ServerSlot {
  info: ServerInfo;
  link: Link;
  workers: Map<number, WorkerSlot>;
  lastSeen: number;
  /** The largest frame the server takes: no run's frame may pass it. */
  maxFrame: number;
  /** Functions whose current definition alone passes maxFrame, so it was not sent: why, by name. Their jobs go elsewhere (see canRun). */
  unsendable: Map<string, string>;
  /** Its spare workers, as it last said. */
  spares: SpareCounts;
}

interface WorkerSlot {
  server: ServerSlot;
  w: number;
  pid: number;
  functions: string[];
  /** What it has been sent and not answered, in the order it runs them (so results come back in this order). */
  inflight: Run[];
  inflightCount: number;
  /** Running a job under suspicion of killing its worker: nothing else goes with it. */
  isolating: boolean;
  done: number;
  failed: number;
  /** When it came up (epoch ms), for its rate in status(). */
  upAt: number;
}

/**
 * How much work, in milliseconds, each worker should have queued ahead of it. Tiny jobs (run times
 * floored at 1 µs) then go about 4,000 to a message each way (a worker tops up at half its window):
 * every message costs each process a wake-up on the I/O thread, and with 4 ms the controller used a
 * fifth more CPU.
 */
const TARGET_WINDOW_MS = 8;
const MIN_WINDOW = 2;
const MAX_WINDOW = 8192;
/** Jobs failed together (their function cannot reach any server) go to the caller this many to a message. */
const FAILED_PER_MESSAGE = 8192;

/** Jobs of one function waiting for a worker. */
interface FunctionQueue {
  runs: Deque<Run>;
  jobs: number;
}

export class Controller {
  private readonly chunks = new ChunkIndex();
  /** Jobs without a result. */
  private outstanding = 0;
  /** Jobs waiting, by function name: a worker only takes functions it can run. */
  private readonly queues = new Map<string, FunctionQueue>();
  /** Jobs that were in flight on a worker that died, run one at a time to find the one that kills. */
  private readonly suspects = new Deque<Run>();
  private readonly definitions = new Map<string, DefinitionSpec>();
  /** How many ready workers preload each function. */
  private readonly providers = new Map<string, number>();
  /** Ready workers over all servers. */
  private workerCount = 0;
  private readonly stats = new Map<string, FunctionStats>();
  private readonly links = new Map<string, Link>();
  private readonly sockets: zmq.Socket[] = [];
  private readonly outboxes: Outbox[] = [];
  private readonly commandWaiters = new Map<number, { servers: Set<ServerSlot>; resolve: () => void }>();
  private nextCommand = 1;
  private heartbeat?: NodeJS.Timeout;
  private readonly counters = { done: 0, failed: 0, retried: 0, timedOut: 0, duplicates: 0, started: Date.now() };
  private readonly rateWindow: Array<[number, number]> = [];
  readonly listening: string[] = [];

  constructor(private readonly options: ControllerOptions) {}

  private get security(): LinkSecurity {
    return this.options.security ?? { serverKeys: {}, insecure: false };
  }

  async start(): Promise<void> {
    const { keyPair, authorizedKeys } = this.security;
    if (this.options.listen.length > 0) {
      checkListen(this.options.listen, this.security);
      await this.bindRouter(this.options.listen, keyPair && authorizedKeys?.length ? { keyPair, admit: authorizedKeys } : undefined);
    }
    for (const url of this.options.urls) this.connect(url);
    this.heartbeat = setInterval(() => this.tick(), this.options.heartbeatMs);
  }

  /** A router servers dial in to; with keys it is the CURVE server of those links and admits only `admit`. */
  private async bindRouter(addresses: string[], curve?: { keyPair: KeyPair; admit: string[] }): Promise<void> {
    let security = {};
    if (curve) {
      const domain = await zap.admit(curve.admit);
      zap.onDecision((decision) => {
        if (decision.domain === domain && !decision.allowed) this.event('peer-refused', { address: decision.address, keyFingerprint: decision.client, reason: 'a server whose key is not in authorizedKeys tried to dial in' });
      });
      security = curveServerOptions(curve.keyPair, domain);
    }
    const router = new zmq.Router(linkOptions({ mandatory: true, ...security }));
    const outbox = this.track(router);
    for (const address of addresses) {
      await router.bind(address).catch((error: Error) => {
        // libzmq says only "Address already in use": which address is what the user has to fix.
        throw new Error(`cannot listen on ${address}: ${error.message.toLowerCase()}`, { cause: error });
      });
      this.listening.push(router.lastEndpoint ?? address);
    }
    void receiveLoop(
      router,
      ([routingId, ...message]) => {
        const key = `in:${routingId!.toString('hex')}`;
        let link = this.links.get(key);
        if (!link) {
          link = { key, lastHello: 0, send: (m) => outbox.post([routingId!, ...m]) };
          forgetIdlePeers(this.links, (peer) => !peer.server && !peer.url);
          this.links.set(key, link);
        }
        this.fromServer(link, message);
      },
      (error) => this.options.log('warn', 'malformed message from a server dropped', { err: describeError(error).message }),
    );
  }

  private track(socket: zmq.Socket & zmq.Writable): Outbox {
    this.sockets.push(socket);
    const outbox = new Outbox(socket, (error) => this.options.log('warn', 'message to a server not delivered', { err: error.message }));
    this.outboxes.push(outbox);
    return outbox;
  }

  /** Dials a server; the handshake is retried on every heartbeat until it answers. */
  connect(url: string): void {
    const address = parseServerUrl(url);
    const key = `out:${address.endpoint}`;
    if (this.links.has(key)) return;
    const serverKey = serverKeyFor(address, this.security);
    const curve = serverKey ? curveClientOptions(this.security.keyPair!, serverKey) : {};
    const dealer = new zmq.Dealer(linkOptions({ routingId: this.options.controllerId, ...curve }));
    const outbox = this.track(dealer);
    const link: Link = { key, url, workers: address.workers, lastHello: 0, send: (m) => outbox.post(m) };
    this.links.set(key, link);
    this.watchHandshakes(dealer, link, address.endpoint, serverKey !== undefined);
    dealer.connect(address.endpoint);
    this.hello(link);
    void receiveLoop(
      dealer,
      (message) => this.fromServer(link, message),
      (error) => this.options.log('warn', 'malformed message from a server dropped', { url, err: describeError(error).message }),
    );
  }

  /**
   * Links a compute server running in this process (the embedded cluster): `attach` gets where to
   * deliver the server's messages and gives back where to send ours. Greeted like a dialled server.
   */
  linkInProcess(attach: (deliver: Deliver, onDeliverError: (error: unknown) => void) => (message: Frames) => void): void {
    const link: Link = { key: 'in-process', inProcess: true, lastHello: 0, send: () => {} };
    link.send = attach(
      (message) => this.fromServer(link, message),
      (error) => this.options.log('warn', 'malformed message from the embedded server dropped', { err: describeError(error).message }),
    );
    this.links.set(link.key, link);
    this.hello(link);
  }

  /** Turns failed security handshakes, which libzmq reports only as socket events, into events that say what to fix. */
  private watchHandshakes(dealer: zmq.Dealer, link: Link, endpoint: string, withKey: boolean): void {
    const refuse = (reason: string) => {
      if (link.refused === reason) return;
      link.refused = reason;
      this.event('server-refused', { url: link.url, reason });
    };
    dealer.events.on('handshake:error:auth', () => refuse(`server ${endpoint} refused this controller's key: add the controller's .pub to the server's --authorized-keys`));
    dealer.events.on('handshake:error:protocol', ({ error }) =>
      refuse(withKey ? `server ${endpoint} does not use keys (${error.code}); it was given a server key, so it must run with --key-file` : `server ${endpoint} requires keys (${error.code}): give its public key (URL ?key=<hex>, serverKey or serverKeys) and this controller's keyFile`),
    );
    dealer.events.on('handshake:error:other', ({ error }) => {
      if (link.handshakeError) return;
      link.handshakeError = `security handshake with ${endpoint} failed (${error.code ?? error.message}): is the server key the one in that server's --key-file?`;
      this.event('server-handshake-failed', { url: link.url, reason: link.handshakeError });
    });
    dealer.events.on('handshake', () => {
      link.handshakeError = undefined;
    });
  }

  /** Counts an answer to a peer out of session; false once it has had its few. Links we dialled are always answered. */
  private mayAnswer(link: Link): boolean {
    if (link.server || link.url || link.inProcess) return true;
    link.complaints = (link.complaints ?? 0) + 1;
    return link.complaints <= MAX_COMPLAINTS;
  }

  private hello(link: Link): void {
    link.lastHello = Date.now();
    link.send(frames({ t: 'hello', v: PROTOCOL_VERSION, controller: this.options.controllerId, workers: link.workers }));
  }

  // ---- from servers -------------------------------------------------------------------------

  private fromServer(link: Link, message: Buffer[]): void {
    const head = readHead<ServerToController>(message[0]);
    const server = link.server;
    if (server) server.lastSeen = Date.now();
    switch (head.t) {
      case 'join':
        if (!this.mayAnswer(link)) return;
        if (head.v !== PROTOCOL_VERSION) {
          link.send(frames({ t: 'refused', reason: `protocol version ${JSON.stringify(head.v)} refused: this controller speaks version ${PROTOCOL_VERSION}` }));
          return this.event('server-refused', { server: head.server?.id, reason: `protocol version ${JSON.stringify(head.v)}` });
        }
        return this.hello(link);
      case 'welcome':
        return this.welcome(link, head.v, head.server, Number.isInteger(head.size) ? head.size : undefined, typeof head.maxFrame === 'number' && head.maxFrame > 0 ? head.maxFrame : MAX_MESSAGE_BYTES);
      case 'refused':
        link.refused = head.reason;
        if (this.mayAnswer(link)) this.event('server-refused', { url: link.url, reason: head.reason });
        return;
      case 'error':
        if (this.mayAnswer(link)) this.event('server-error', { server: server?.info.id, url: link.url, reason: head.reason });
        return;
      case 'server-bye':
        if (!server) return;
        link.departed = server.info;
        return this.lose(server, 'shutdown', head.reason);
    }
    if (!server) {
      // Traffic from a server we have no session with (we declared it lost, or it restarted): greet it again.
      // Not one that said goodbye: what follows is its closing, and a new process there joins or answers the heartbeat's hello.
      if (!link.departed && Date.now() - link.lastHello > this.options.heartbeatMs && this.mayAnswer(link)) this.hello(link);
      if (head.t === 'results' && link.known) this.results(link.known, undefined, head.w, message);
      return;
    }
    switch (head.t) {
      case 'pong':
        return;
      case 'worker-up':
        if (!Number.isInteger(head.w) || !Array.isArray(head.functions) || !head.functions.every((f) => typeof f === 'string')) throw new ProtocolError('worker-up needs a whole-number w and a list of function names');
        return this.workerUp(server, head.w, head.pid, head.functions);
      case 'worker-down':
        return this.workerDown(server, head.w, head.cause, `worker ${head.w} (pid ${head.pid}) on ${server.info.host} ${downText(head)}`, head.cause === 'timeout' ? { job: head.job, limitMs: head.limitMs } : undefined);
      case 'spares':
        if (!Number.isInteger(head.ready) || !Number.isInteger(head.starting) || head.ready < 0 || head.starting < 0) throw new ProtocolError('spares needs whole-number ready and starting counts');
        server.spares = { ready: head.ready, starting: head.starting };
        return this.event('spares', { server: server.info.id, host: server.info.host, ready: head.ready, starting: head.starting });
      case 'worker-output':
        return this.toCaller({ t: 'output', job: null, server: server.info.id, host: server.info.host, w: head.w, stream: head.stream }, textFrame(message[1], 'output'));
      case 'command-done':
        return this.commandDone(head.id, server);
      case 'results':
        return this.results(server.info, server, head.w, message);
      default:
        throw new ProtocolError(`unexpected message type from server ${server.info.id}`);
    }
  }

  private welcome(link: Link, version: number, info: ServerInfo, workers: number | undefined, maxFrame: number): void {
    if (typeof info !== 'object' || info === null || typeof info.id !== 'string' || typeof info.host !== 'string' || !Array.isArray(info.functions)) {
      throw new ProtocolError('welcome without a valid server description');
    }
    if (version !== PROTOCOL_VERSION) {
      link.refused = `server speaks protocol version ${version}, this controller ${PROTOCOL_VERSION}`;
      return this.event('server-refused', { url: link.url, reason: link.refused });
    }
    if (link.server?.info.id === info.id && link.server.info.pid === info.pid) return; // a repeated handshake
    if (link.departed?.id === info.id && link.departed.pid === info.pid) return; // it said goodbye: its last answers before it goes
    if (link.server) this.lose(link.server, 'crash', 'replaced by a new server process at the same address');
    link.server = { info, link, workers: new Map(), lastSeen: Date.now(), maxFrame, unsendable: new Map(), spares: { ready: 0, starting: 0 } };
    link.known = info;
    link.departed = undefined;
    link.complaints = 0;
    link.refused = undefined;
    this.options.log('info', 'server joined', { server: info.id, url: link.url });
    this.event('server-up', { server: info.id, host: info.host, url: link.url, workers });
  }

  private workerUp(server: ServerSlot, w: number, pid: number, functions: string[]): void {
    if (server.workers.has(w)) return;
    const slot: WorkerSlot = { server, w, pid, functions, inflight: [], inflightCount: 0, isolating: false, done: 0, failed: 0, upAt: Date.now() };
    server.workers.set(w, slot);
    this.workerCount++;
    for (const fn of functions) this.providers.set(fn, (this.providers.get(fn) ?? 0) + 1);
    if (this.definitions.size > 0) this.sendDefinitions(slot, [...this.definitions.values()]);
    this.event('worker-up', { server: server.info.id, host: server.info.host, w, pid });
    this.pump(slot);
  }

  private workerDown(server: ServerSlot, w: number, cause: DownCause, description: string, timedOut?: { job?: number; limitMs?: number }): void {
    const slot = server.workers.get(w);
    if (!slot) return;
    server.workers.delete(w);
    this.workerCount--;
    for (const fn of slot.functions) this.providers.set(fn, (this.providers.get(fn) ?? 1) - 1);
    this.event('worker-down', { server: server.info.id, host: server.info.host, w, pid: slot.pid, cause, ...(timedOut ?? {}) });
    if (timedOut) this.timedOut(slot, timedOut.job, timedOut.limitMs, description);
    this.recover(slot, cause, description);
    this.pumpAll();
  }

  /** A job ran past its timeout and its server killed the worker: report it (or retry, as configured); the rest aboard are innocent. */
  private timedOut(slot: WorkerSlot, id: number | undefined, limitMs: number | undefined, description: string): void {
    if (id === undefined) return;
    const chunk = this.chunks.find(id);
    if (!chunk) return;
    const index = id - chunk.first;
    const run = chunk.done[index] ? undefined : this.takeFromInflight(slot, chunk, index);
    if (!run) return;
    const attempts = charge(chunk, index);
    this.counters.timedOut++;
    if (attempts > (this.options.timeoutRetries ?? 0)) {
      return this.fail(chunk, index, run.dispatchedAt, slot, 'JobTimeoutError', `job ${id} ('${chunk.fn}') ran past its timeout of ${limitMs ?? chunk.timeoutMs} ms; ${description} and reforked (attempt ${attempts})`);
    }
    this.counters.retried++;
    this.requeueFront(runOf(chunk, index));
  }

  /**
   * Puts a dead worker's jobs back. When the worker was asked to go (refresh, die, shutdown) they
   * are innocent. When it died on its own with one job aboard, that job is charged an attempt;
   * with several aboard, nobody is charged yet: they are rerun one by one until the killer is alone.
   */
  private recover(slot: WorkerSlot, cause: DownCause, description: string): void {
    const aboard = slot.inflight.flatMap((run) => [...openParts(run)]);
    slot.inflight = [];
    slot.inflightCount = 0;
    if (cause !== 'crash') {
      // Asked to go, recycled over its memory ceiling, or killed for another job's timeout: nobody aboard is charged.
      for (let i = aboard.length - 1; i >= 0; i--) this.requeueFront(aboard[i]!);
      return;
    }
    const alone = aboard.length === 1 && aboard[0]!.end - aboard[0]!.start === 1 ? aboard[0]! : undefined;
    if (alone) {
      const { chunk, start: index } = alone;
      const attempts = charge(chunk, index);
      if (attempts > this.options.retries) {
        return this.fail(chunk, index, alone.dispatchedAt, slot, 'WorkerDiedError', `${description} while running job ${chunk.first + index} ('${chunk.fn}'); gave up after ${attempts} attempt(s)`);
      }
      this.counters.retried++;
      this.suspects.push(alone);
      return;
    }
    for (const run of aboard) for (let index = run.start; index < run.end; index++) this.suspects.push(runOf(run.chunk, index));
  }

  private requeueFront(run: Run): void {
    const queue = this.queueFor(run.chunk.fn);
    queue.runs.unshift(run);
    queue.jobs += run.end - run.start;
  }

  /** Takes one job out of what a worker holds (a result out of order, a timed-out job): the run it was in, or undefined if it holds none. */
  private takeFromInflight(slot: WorkerSlot, chunk: Chunk, index: number): Run | undefined {
    const run = removeFromRuns(slot.inflight, chunk, index);
    if (run) slot.inflightCount--;
    return run;
  }

  private lose(server: ServerSlot, cause: DownCause, reason: string): void {
    if (server.link.server === server) server.link.server = undefined;
    this.options.log('warn', 'server lost', { server: server.info.id, reason });
    for (const slot of [...server.workers.values()]) this.workerDown(server, slot.w, cause, `server ${server.info.id} was lost (${reason})`);
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

  /**
   * Results from a server in session (`server`), or late ones from a server we gave up on (only
   * `info`). A worker answers its jobs in the order it got them, so each result is normally the
   * next job of the first run it holds: no lookup.
   */
  private results(info: ServerInfo, server: ServerSlot | undefined, w: number, message: Buffer[]): void {
    const input = new WorkerRows(message[1]);
    const out = readJson<OutputRow[]>(message[3], 'job output');
    if (!Array.isArray(out)) throw new ProtocolError('job output must be a list');
    const slot = server?.workers.get(w);
    const rows = new CallerRowWriter(input.count);
    const now = Date.now();
    for (let index = 0; index < input.count; index++) {
      const id = input.job(index);
      const ok = input.ok(index);
      const runMs = input.runMs(index);
      const next = slot?.inflight[0];
      const chunk = next && id === next.chunk.first + next.start ? next.chunk : this.chunks.find(id);
      if (!chunk) {
        this.counters.duplicates++; // a late duplicate: the job already has its result
        continue;
      }
      const job = id - chunk.first;
      // For the usual result this takes the first run's first job: found at once, no search.
      const dispatchedAt = (slot && this.takeFromInflight(slot, chunk, job)?.dispatchedAt) ?? now;
      if (chunk.done[job]) {
        this.counters.duplicates++;
        continue;
      }
      this.finish(chunk, job);
      const stats = chunk.stats;
      stats.avgRunMs = stats.avgRunMs === undefined ? runMs : stats.avgRunMs * 0.8 + runMs * 0.2;
      if (ok) this.counters.done++;
      else this.counters.failed++;
      if (slot) ok ? slot.done++ : slot.failed++;
      rows.forward(input, index, index, attemptsOf(chunk, job) + 1, dispatchedAt);
    }
    if (slot?.isolating && slot.inflightCount === 0) slot.isolating = false;
    this.rateWindow.push([now, rows.count]);
    if (rows.count > 0 || out.length > 0) {
      const pid = slot?.pid ?? -1;
      this.options.toCaller([
        ...frames({ t: 'results', server: info.id, host: info.host, w, pid }),
        rows.bytes(),
        ...message.slice(2),
      ]);
    }
    if (slot) this.pump(slot);
  }

  private finish(chunk: Chunk, index: number): void {
    chunk.done[index] = 1;
    this.outstanding--;
    if (--chunk.open === 0) this.chunks.close(chunk);
  }

  private fail(chunk: Chunk, index: number, dispatchedAt: number, slot: WorkerSlot, name: string, message: string): void {
    this.failAll(slot, [[chunk, index]], dispatchedAt, name, message);
  }

  /** Fails jobs with one and the same error, in one results message whose rows all point at one value. */
  private failAll(slot: WorkerSlot, jobs: ReadonlyArray<readonly [Chunk, number]>, dispatchedAt: number, name: string, message: string): void {
    const value = encodeValue({ name, message });
    const rows = new CallerRowWriter(jobs.length);
    const now = Date.now();
    for (const [chunk, index] of jobs) {
      this.finish(chunk, index);
      rows.failed(0, chunk.first + index, now, this.definitions.get(chunk.fn)?.version ?? 0, value.plain, attemptsOf(chunk, index), dispatchedAt);
    }
    this.counters.failed += jobs.length;
    this.options.toCaller([
      ...frames({ t: 'results', server: slot.server.info.id, host: slot.server.info.host, w: slot.w, pid: slot.pid }),
      rows.bytes(),
      joinJson([value.text]),
      '[]',
    ]);
  }

  /** A job with a frame larger than its server takes would cost the link its connection: it fails instead. */
  private tooLargeFor(slot: WorkerSlot, chunk: Chunk, index: number): void {
    this.fail(chunk, index, Date.now(), slot, 'MessageTooLargeError', `job ${chunk.first + index} ('${chunk.fn}') has a ${megabytes(largestFrame(chunk, index))} frame; ${frameLimitOf(slot.server)}`);
  }

  /**
   * Jobs whose function's definition could not be sent to this server, when no other connected
   * server took it (see canRun), fail rather than run an older version, or none.
   */
  private undefinedOn(slot: WorkerSlot, jobs: ReadonlyArray<readonly [Chunk, number]>): void {
    const fn = jobs[0]![0].fn;
    this.failAll(slot, jobs, Date.now(), 'MessageTooLargeError', `'${fn}' cannot run there: ${slot.server.unsendable.get(fn)}`);
  }

  // ---- scheduling ---------------------------------------------------------------------------

  private queueFor(fn: string): FunctionQueue {
    let queue = this.queues.get(fn);
    if (!queue) this.queues.set(fn, (queue = { runs: new Deque(), jobs: 0 }));
    return queue;
  }

  private statsFor(fn: string): FunctionStats {
    let stats = this.stats.get(fn);
    if (!stats) this.stats.set(fn, (stats = {}));
    return stats;
  }

  private canRun(slot: WorkerSlot, fn: string): boolean {
    // A server that could not take fn's definition leaves its jobs to servers that did; with none connected, they fail there.
    if (slot.server.unsendable.has(fn)) return !this.definedSomewhere(fn);
    return this.definitions.has(fn) || slot.functions.includes(fn) || !this.providers.get(fn);
  }

  private definedSomewhere(fn: string): boolean {
    for (const link of this.links.values()) if (link.server && !link.server.unsendable.has(fn)) return true;
    return false;
  }

  private window(fn: string): number {
    const avg = this.stats.get(fn)?.avgRunMs;
    if (avg === undefined) return MIN_WINDOW;
    return Math.max(MIN_WINDOW, Math.min(MAX_WINDOW, Math.ceil(TARGET_WINDOW_MS / Math.max(avg, 0.001))));
  }

  private *readyWorkers(): Generator<WorkerSlot> {
    for (const link of this.links.values()) {
      if (link.server) yield* link.server.workers.values();
    }
  }

  pumpAll(): void {
    for (const slot of this.readyWorkers()) this.pump(slot);
  }

  /** Fills one worker's window with one batch. */
  private pump(slot: WorkerSlot): void {
    if (slot.isolating) return;
    if (slot.inflightCount === 0 && this.suspects.length > 0) {
      const suspect = this.takeSuspect(slot);
      if (suspect && slot.server.unsendable.has(suspect.chunk.fn)) {
        this.undefinedOn(slot, [[suspect.chunk, suspect.start]]);
      } else if (suspect && jobsWithinFrame(suspect.chunk, suspect.start, 1, slot.server.maxFrame) === 0) {
        this.tooLargeFor(slot, suspect.chunk, suspect.start); // it ran on a server that takes larger frames
      } else if (suspect) {
        slot.isolating = true;
        return this.dispatch(slot, [suspect]);
      }
    }
    const batch: Run[] = [];
    let taken = 0;
    for (const [fn, queue] of this.queues) {
      if (queue.jobs === 0 || !this.canRun(slot, fn)) continue;
      if (slot.server.unsendable.has(fn)) {
        this.failQueued(slot, queue);
        continue;
      }
      const window = this.window(fn);
      const held = slot.inflightCount + taken;
      // A busy worker is topped up only once half its window is free: fewer, larger batches both ways.
      if (slot.inflightCount > 0 && window - held < Math.ceil(window / 2)) continue;
      // Beyond its first job, a worker takes no more than its share of what is left: the last jobs then go
      // to whichever worker frees up first rather than wait behind a busy one while another sits idle.
      let credit = Math.min(window - held, Math.max(held === 0 ? 1 : 0, Math.floor(queue.jobs / Math.max(1, this.workerCount))));
      while (credit > 0 && queue.runs.length > 0) {
        const run = queue.runs.peek()!;
        const skipped = skipDone(run);
        queue.jobs -= skipped;
        const size = run.end - run.start;
        if (size === 0) {
          queue.runs.shift();
          continue;
        }
        const take = jobsWithinFrame(run.chunk, run.start, Math.min(credit, size), slot.server.maxFrame);
        if (take === 0) {
          this.tooLargeFor(slot, run.chunk, run.start); // done now: skipped on the next turn
          continue;
        }
        if (take === size) batch.push(queue.runs.shift()!);
        else {
          batch.push(runOf(run.chunk, run.start, run.start + take));
          run.start += take;
        }
        queue.jobs -= take;
        credit -= take;
        taken += take;
      }
    }
    if (batch.length > 0) this.dispatch(slot, batch);
  }

  private failQueued(slot: WorkerSlot, queue: FunctionQueue): void {
    let jobs: Array<[Chunk, number]> = [];
    for (let run = queue.runs.shift(); run; run = queue.runs.shift()) {
      for (let index = run.start; index < run.end; index++) {
        if (run.chunk.done[index]) continue;
        jobs.push([run.chunk, index]);
        if (jobs.length === FAILED_PER_MESSAGE) {
          this.undefinedOn(slot, jobs);
          jobs = [];
        }
      }
    }
    if (jobs.length > 0) this.undefinedOn(slot, jobs);
    queue.jobs = 0;
  }

  private takeSuspect(slot: WorkerSlot): Run | undefined {
    for (let n = this.suspects.length; n > 0; n--) {
      const run = this.suspects.shift()!;
      if (run.chunk.done[run.start]) continue;
      if (this.canRun(slot, run.chunk.fn)) return run;
      this.suspects.push(run);
    }
    return undefined;
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
    slot.server.link.send([...frames({ t: 'jobs', w: slot.w }), JSON.stringify(meta), ...out]);
  }

  /**
   * Sends definitions in as few messages as fit the server's frame limit. One that passes it alone is
   * not sent (it would cost the link its connection, and be resent with every reconnection): its jobs
   * go to servers that took it, or fail here when none did, until a definition that fits replaces it.
   */
  private sendDefinitions(slot: WorkerSlot, defs: DefinitionSpec[]): void {
    const server = slot.server;
    const send = (texts: string[]) => server.link.send([...frames({ t: 'define', w: slot.w }), `{"defs":[${texts.join(',')}]}`]);
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
    const { first, count, fn } = head;
    const timeoutMs = head.timeoutMs ?? 0;
    if (!Number.isSafeInteger(first) || first < 1 || !Number.isInteger(count) || count < 1 || typeof fn !== 'string' || typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      throw new ProtocolError('jobs needs a whole first id ≥ 1, a count ≥ 1, a function name and a timeout ≥ 0');
    }
    const packed = { values: message[1] ?? Buffer.alloc(0), offsets: readUint32s(message[2], count + 1, 'job offsets') };
    checkOffsets(packed);
    const bins = message.slice(4);
    const nbins = message[3]?.length ? readUint32s(message[3], count, 'binary frame counts') : undefined;
    const named = nbins ? nbins.reduce((a, b) => a + b, 0) : 0;
    if (named !== bins.length) throw new ProtocolError(`jobs name ${named} binary frames, but ${bins.length} came with them`);
    const chunk = makeChunk(first, fn, timeoutMs, this.statsFor(fn), packed, nbins, bins);
    this.chunks.add(chunk);
    this.outstanding += count;
    const queue = this.queueFor(fn);
    queue.runs.push(runOf(chunk, 0, count));
    queue.jobs += count;
    this.pumpAll();
  }

  define(spec: DefinitionSpec): void {
    this.definitions.set(spec.name, spec);
    for (const slot of this.readyWorkers()) this.sendDefinitions(slot, [spec]);
    this.pumpAll();
  }

  /** Sends a command to every server and resolves when each has carried it out (or was lost). */
  command(cmd: 'refresh' | 'die'): Promise<void> {
    const servers = new Set([...this.links.values()].flatMap((link) => (link.server ? [link.server] : [])));
    if (servers.size === 0) return Promise.resolve();
    const id = this.nextCommand++;
    return new Promise((resolve) => {
      this.commandWaiters.set(id, { servers, resolve });
      for (const server of servers) server.link.send(frames({ t: 'command', id, cmd }));
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
    const now = Date.now();
    while (this.rateWindow.length > 0 && now - this.rateWindow[0]![0] > 5000) this.rateWindow.shift();
    const recent = this.rateWindow.reduce((sum, [, n]) => sum + n, 0);
    let queued = 0;
    for (const queue of this.queues.values()) queued += queue.jobs;
    const servers = [...this.links.values()].flatMap((link): ServerStatus[] => {
      if (!link.server) return link.url ? [{ url: link.url, connected: false, refused: link.refused, handshakeError: link.handshakeError }] : [];
      const { info, workers, lastSeen } = link.server;
      return [{
        id: info.id,
        host: info.host,
        url: link.url,
        connected: true,
        lastSeenMs: now - lastSeen,
        functions: info.functions,
        spares: link.server.spares,
        workers: [...workers.values()].map((s) => ({ w: s.w, pid: s.pid, busy: s.inflightCount > 0, inflight: s.inflightCount, done: s.done, failed: s.failed, upMs: now - s.upAt })),
      }];
    });
    return {
      controller: this.options.controllerId,
      listening: this.listening,
      servers,
      workers: servers.reduce((n, s) => n + (s.workers?.length ?? 0), 0),
      queued: queued + this.suspects.length,
      inflight: this.outstanding - queued - this.suspects.length,
      done: this.counters.done,
      failed: this.counters.failed,
      retried: this.counters.retried,
      timedOut: this.counters.timedOut,
      duplicatesDropped: this.counters.duplicates,
      ratePerSec: Math.round(recent / Math.min(5, Math.max(0.001, (now - this.counters.started) / 1000))),
      definitions: [...this.definitions.values()].map(({ name, version }) => ({ name, version })),
    };
  }

  // ---- housekeeping -------------------------------------------------------------------------

  private tick(): void {
    const now = Date.now();
    for (const link of this.links.values()) {
      if (link.inProcess) continue;
      const server = link.server;
      if (server) {
        if (now - server.lastSeen > this.options.heartbeatTimeoutMs) this.lose(server, 'crash', `no answer for ${now - server.lastSeen} ms`);
        else link.send(frames({ t: 'ping', n: now }));
      } else if (link.url && !link.refused) {
        this.hello(link);
      }
    }
  }

  private event<K extends EventKind>(kind: K, detail: EventDetail<K>): void {
    this.toCaller({ t: 'event', kind, detail } as ControllerToCaller);
  }

  private toCaller(head: ControllerToCaller, ...rest: string[]): void {
    this.options.toCaller(frames(head, ...rest));
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const link of this.links.values()) if (link.server) link.send(frames({ t: 'bye' }));
    await Promise.all(this.outboxes.map((outbox) => outbox.flushed()));
    for (const socket of this.sockets) {
      socket.linger = 200;
      socket.close();
    }
  }
}


/** Moves a queued run's start past jobs that got their result meanwhile (a late one from a lost server); returns how many. */
function skipDone(run: Run): number {
  const from = run.start;
  while (run.start < run.end && run.chunk.done[run.start]) run.start++;
  return run.start - from;
}

function downText(head: { cause: DownCause; code: number | null; signal: string | null; rssMb?: number }): string {
  if (head.cause === 'timeout') return 'was killed';
  if (head.cause === 'recycle') return `was recycled at ${head.rssMb} MB resident`;
  if (head.signal) return `was killed by ${head.signal}`;
  return `exited with code ${head.code}`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

function frameLimitOf(server: ServerSlot): string {
  return `server ${server.info.id} takes frames of at most ${megabytes(server.maxFrame)} (its --max-message-mb)`;
}
