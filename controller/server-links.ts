/**
 * The controller's links to servers: dialling and listening (through protocol/link-sockets.ts, as
 * the server does), the handshake that puts a server in session, heartbeats, the few answers a peer
 * out of session gets, and the goodbye. What a server in session says goes on to the controller.
 */
import {
  PROTOCOL_VERSION,
  MAX_MESSAGE_BYTES,
  ProtocolError,
  describeError,
  LinkSockets,
  mayComplainTo,
  readHead,
  toServer,
  type Deliver,
  type DownCause,
  type Frames,
  type HandshakeWatch,
  type ServerInfo,
  type ServerToController,
  CLOSE_FLUSH_MS,
} from '../protocol/index.js';
import type { EventDetail, EventKind } from '../protocol/status.js';
import { checkListen, serverKeyFor, type LinkSecurity } from '../protocol/link-security.js';
import { parseServerUrl } from '../protocol/server-url.js';
import type { Cluster, ServerLink, ServerSlot } from './cluster.js';

export interface ServerLinksOptions {
  controllerId: string;
  /** Where to accept servers that dial in. */
  listen: string[];
  /** Servers to dial. */
  urls: string[];
  /** Keys for the links (default: none, which only loopback links allow). */
  security?: LinkSecurity;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  weight?: number;
  log(level: 'info' | 'warn' | 'error', message: string, detail?: Record<string, unknown>): void;
}

/** What the links tell the controller. */
export interface SessionEvents {
  /** A message from a server in session, other than the handshake's. */
  message(server: ServerSlot, head: ServerToController, message: Buffer[]): void;
  /** Results from a server no longer in session: still used (first result per job wins). */
  lateResults(info: ServerInfo, w: number, message: Buffer[]): void;
  /** A server came into session: it hears of what it needs before any job. */
  joined(server: ServerSlot): void;
  /** A server went silent, said goodbye or was replaced: its session is over. */
  lost(server: ServerSlot, cause: DownCause, reason: string): void;
  event<K extends EventKind>(kind: K, detail: EventDetail<K>): void;
}

export class ServerLinks {
  readonly listening: string[] = [];
  private readonly sockets: LinkSockets;
  private heartbeat?: NodeJS.Timeout;
  /** A look for silent servers between heartbeats (see watchSilence). */
  private silenceCheck?: NodeJS.Timeout;

  constructor(
    private readonly options: ServerLinksOptions,
    private readonly cluster: Cluster,
    private readonly session: SessionEvents,
  ) {
    this.sockets = new LinkSockets((error) => options.log('warn', 'message to a server not delivered', { err: error.message }));
  }

  private get security(): LinkSecurity {
    return this.options.security ?? { serverKeys: {}, insecure: false };
  }

  async start(): Promise<void> {
    const { keyPair, authorizedKeys } = this.security;
    if (this.options.listen.length > 0) {
      checkListen(this.options.listen, this.security);
      const bound = await this.sockets.bindRouter<ServerLink>({
        addresses: this.options.listen,
        // With keys it is the CURVE server of these links and admits only authorizedKeys.
        curve:
          keyPair && authorizedKeys?.length
            ? {
                keyPair,
                admit: authorizedKeys,
                decided: (decision) => {
                  if (!decision.allowed)
                    this.session.event('peer-refused', { address: decision.address, keyFingerprint: decision.client, reason: 'a server whose key is not in authorizedKeys tried to dial in' });
                },
              }
            : undefined,
        peers: this.cluster.links,
        prefix: 'in:',
        newPeer: (key, _routingId, send) => ({ key, lastHello: 0, send }),
        isIdle: (peer) => !peer.server && !peer.url,
        receive: (link, message) => this.receive(link, message),
        malformed: (error) => this.options.log('warn', 'malformed message from a server dropped', { err: describeError(error).message }),
      });
      this.listening.push(...bound);
    }
    for (const url of this.options.urls) this.connect(url);
    this.heartbeat = setInterval(() => this.tick(), this.options.heartbeatMs);
  }

  /** Dials a server; the handshake is retried on every heartbeat until it answers. */
  connect(url: string): void {
    const address = parseServerUrl(url);
    const key = `out:${address.endpoint}`;
    if (this.cluster.links.has(key)) return;
    const serverKey = serverKeyFor(address, this.security);
    const link: ServerLink = { key, url, workers: address.workers, lastHello: 0, send: () => {} };
    this.cluster.links.set(key, link);
    link.send = this.sockets.dial({
      endpoint: address.endpoint,
      options: { routingId: this.options.controllerId },
      curve: serverKey ? { keyPair: this.security.keyPair!, serverKey } : undefined,
      handshakes: this.handshakeEvents(link, address.endpoint, serverKey !== undefined),
      receive: (message) => this.receive(link, message),
      malformed: (error) => this.options.log('warn', 'malformed message from a server dropped', { url, err: describeError(error).message }),
    });
    this.hello(link);
  }

  /**
   * Links a compute server running in this process (the embedded cluster): `attach` gets where to
   * deliver the server's messages and gives back where to send ours. Greeted like a dialled server.
   */
  linkInProcess(attach: (deliver: Deliver, onDeliverError: (error: unknown) => void) => (message: Frames) => void): void {
    const link: ServerLink = { key: 'in-process', inProcess: true, lastHello: 0, send: () => {} };
    link.send = attach(
      (message) => this.receive(link, message),
      (error) => this.options.log('warn', 'malformed message from the embedded server dropped', { err: describeError(error).message }),
    );
    this.cluster.links.set(link.key, link);
    this.hello(link);
  }

  /** Says goodbye to every server in session and closes the sockets once it is on its way. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    clearTimeout(this.silenceCheck);
    for (const server of this.cluster.servers()) server.link.send(toServer({ t: 'bye' }));
    // A server that vanished cannot take what is queued for it (see LinkSockets.flushed): wait only a moment.
    await this.sockets.flushed(CLOSE_FLUSH_MS);
    this.sockets.close(200);
  }

  /** Turns failed security handshakes, which libzmq reports only as socket events, into events that say what to fix. */
  private handshakeEvents(link: ServerLink, endpoint: string, withKey: boolean): HandshakeWatch {
    const refuse = (reason: string) => {
      if (link.refused === reason) return;
      link.refused = reason;
      this.session.event('server-refused', { url: link.url, reason });
    };
    return {
      keyRefused: () => refuse(`server ${endpoint} refused this controller's key: add the controller's .pub to the server's --authorized-keys`),
      mismatch: (_address, error) =>
        refuse(
          withKey
            ? `server ${endpoint} does not use keys (${error.code}); it was given a server key, so it must run with --key-file`
            : `server ${endpoint} requires keys (${error.code}): give its public key (URL ?key=<hex>, serverKey or serverKeys) and this controller's keyFile`,
        ),
      failed: (_address, error) => {
        if (link.handshakeError) return;
        link.handshakeError = `security handshake with ${endpoint} failed (${error.code ?? error.message}): is the server key the one in that server's --key-file?`;
        this.session.event('server-handshake-failed', { url: link.url, reason: link.handshakeError });
      },
      succeeded: () => {
        link.handshakeError = undefined;
      },
    };
  }

  /** Counts an answer to a peer out of session; false once it has had its few. Links we dialled are always answered. */
  private mayAnswer(link: ServerLink): boolean {
    if (link.server || link.url || link.inProcess) return true;
    return mayComplainTo(link);
  }

  private hello(link: ServerLink): void {
    link.lastHello = Date.now();
    link.send(toServer({ t: 'hello', v: PROTOCOL_VERSION, controller: this.options.controllerId, workers: link.workers, weight: this.options.weight }));
  }

  private receive(link: ServerLink, message: Buffer[]): void {
    const head = readHead<ServerToController>(message[0]);
    const server = link.server;
    if (server) server.lastSeen = Date.now();
    switch (head.t) {
      case 'join':
        if (!this.mayAnswer(link)) return;
        if (head.v !== PROTOCOL_VERSION) {
          link.send(toServer({ t: 'refused', reason: `protocol version ${JSON.stringify(head.v)} refused: this controller speaks version ${PROTOCOL_VERSION}` }));
          return this.session.event('server-refused', { server: head.server?.id, reason: `protocol version ${JSON.stringify(head.v)}` });
        }
        return this.hello(link);
      case 'welcome':
        return this.welcome(
          link,
          head.v,
          head.server,
          Number.isInteger(head.size) ? head.size : undefined,
          Array.isArray(head.workers) ? head.workers.length : 0,
          typeof head.maxFrame === 'number' && head.maxFrame > 0 ? head.maxFrame : MAX_MESSAGE_BYTES,
          head.shared === true,
        );
      case 'refused':
        link.refused = head.reason;
        if (this.mayAnswer(link)) this.session.event('server-refused', { url: link.url, reason: head.reason });
        return;
      case 'error':
        if (this.mayAnswer(link)) this.session.event('server-error', { server: server?.info.id, url: link.url, reason: head.reason });
        return;
      case 'server-bye':
        if (!server) return;
        link.departed = server.info;
        return this.session.lost(server, 'shutdown', head.reason);
    }
    if (server) return this.session.message(server, head, message);
    // Traffic from a server we have no session with (we declared it lost, or it restarted): greet it again.
    // Not one that said goodbye: what follows is its closing, and a new process there joins or answers the heartbeat's hello.
    if (!link.departed && Date.now() - link.lastHello > this.options.heartbeatMs && this.mayAnswer(link)) this.hello(link);
    if (head.t === 'results' && link.known) this.session.lateResults(link.known, head.w, message);
  }

  private welcome(link: ServerLink, version: number, info: ServerInfo, workers: number | undefined, up: number, maxFrame: number, shared: boolean): void {
    if (typeof info !== 'object' || info === null || typeof info.id !== 'string' || typeof info.host !== 'string' || !Array.isArray(info.functions)) {
      throw new ProtocolError('welcome without a valid server description');
    }
    if (version !== PROTOCOL_VERSION) {
      link.refused = `server speaks protocol version ${version}, this controller ${PROTOCOL_VERSION}`;
      return this.session.event('server-refused', { url: link.url, reason: link.refused });
    }
    if (link.server?.info.id === info.id && link.server.info.pid === info.pid) return; // a repeated handshake
    if (link.departed?.id === info.id && link.departed.pid === info.pid) return; // it said goodbye: its last answers before it goes
    if (link.server) this.session.lost(link.server, 'crash', 'replaced by a new server process at the same address');
    this.session.joined(this.cluster.openSession(link, info, maxFrame, shared));
    link.departed = undefined;
    link.complaints = 0;
    link.refused = undefined;
    this.options.log('info', 'server joined', { server: info.id, url: link.url });
    this.session.event('server-up', { server: info.id, host: info.host, url: link.url, workers, up });
  }

  /** Pings each server in session and gives up on one silent too long; greets again the dialled ones not yet in session. */
  private tick(): void {
    const now = Date.now();
    const ping = toServer({ t: 'ping', n: now }); // one message for all: its frames are only read
    for (const link of this.cluster.links.values()) {
      if (link.inProcess) continue;
      const server = link.server;
      if (server) {
        if (!this.loseIfSilent(server, now)) link.send(ping);
      } else if (link.url && !link.refused) {
        this.hello(link);
      }
    }
    this.watchSilence(now);
  }

  /** Gives up on a server silent for longer than heartbeatTimeoutMs; true when it did. */
  private loseIfSilent(server: ServerSlot, now: number): boolean {
    if (now - server.lastSeen <= this.options.heartbeatTimeoutMs) return false;
    this.session.lost(server, 'crash', `no answer for ${now - server.lastSeen} ms`);
    return true;
  }

  /**
   * Looks again when the first server would pass its timeout before the next heartbeat: a silent
   * server is then given up on at its timeout, not up to a heartbeat later.
   */
  private watchSilence(now: number): void {
    clearTimeout(this.silenceCheck);
    this.silenceCheck = undefined;
    let first = Number.POSITIVE_INFINITY;
    for (const server of this.cluster.servers()) if (!server.link.inProcess && server.lastSeen < first) first = server.lastSeen;
    const due = first + this.options.heartbeatTimeoutMs + 1;
    if (due >= now + this.options.heartbeatMs) return;
    this.silenceCheck = setTimeout(
      () => {
        const at = Date.now();
        for (const server of [...this.cluster.servers()]) if (!server.link.inProcess) this.loseIfSilent(server, at);
        this.watchSilence(at);
      },
      Math.max(0, due - now),
    );
  }
}
