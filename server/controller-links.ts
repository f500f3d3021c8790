/**
 * A server's links to its controllers, whichever side dialled: the router controllers dial in to
 * (--bind), the dealers that dial out (--connect), the in-process link of the embedded cluster; the
 * gate every message passes (a readable head, a hello first), complaints to peers that send
 * garbage, and who is in session. What a greeted controller asks for is the server's to answer.
 */
import type { Logger } from 'pino';
import {
  describeError,
  inProcessSender,
  LinkSockets,
  MAX_COMPLAINTS,
  mayComplainTo,
  PROTOCOL_VERSION,
  readHead,
  toController,
  type ControllerToServer,
  type Deliver,
  type Frames,
  type HandshakeWatch,
  type KeyPair,
  type LinkMessage,
  type LinkTurn,
  type ServerInfo,
  type ServerToController,
} from '../protocol/index.js';

/** One controller's connection, whichever side dialled. */
export interface ControllerLink {
  tag: string;
  send(message: LinkMessage<ServerToController>): void;
  greeted: boolean;
  /** When it last said anything (its pings come every heartbeat). */
  heardAt?: number;
  controller?: string;
  /** Its share of the workers against other sessions' (its hello's weight; 1 by default). */
  weight?: number;
  /** Error replies since its last good hello: a peer that sends garbage and never reads gets only a few, so it cannot fill the shared socket's pipe. */
  complaints?: number;
}

/** A head a greeted controller may send: the hello and a refusal are the links' own. */
export type SessionHead = Exclude<ControllerToServer, { t: 'hello' } | { t: 'refused' }>;

export interface ControllerLinksOptions {
  /** This server as controllers know it: the routing id of its dialled links, and what it joins with. */
  info: ServerInfo;
  keyPair?: KeyPair;
  authorizedKeys?: string[];
  controllerKey?: string;
  maxMessageBytes?: number;
  log: Logger;
  /** A controller's hello: the server greets it (or refuses it) with what its pool has. */
  hello(link: ControllerLink, head: Extract<ControllerToServer, { t: 'hello' }>): void;
  /** Anything else a greeted controller sends. */
  message(link: ControllerLink, head: SessionHead, message: Buffer[]): void;
  malformed(from: string, error: unknown): void;
}

/** A controller silent this long is no longer counted in session (for --idle-exit); controllers ping every second by default. */
const SILENT_CONTROLLER_MS = 10_000;

export class ControllerLinks {
  private readonly links = new Map<string, ControllerLink>();
  /** The sockets of the links to controllers (the workers' socket is not one of them). */
  private readonly sockets: LinkSockets;
  /** Dialled links, for their tags. */
  private dialled = 0;
  /** Endpoints actually bound (with wildcard ports resolved). */
  readonly bound: string[] = [];

  constructor(private readonly options: ControllerLinksOptions) {
    this.sockets = new LinkSockets((error) => options.log.warn({ err: error.message }, 'message to controller not sent'));
  }

  get(tag: string): ControllerLink | undefined {
    return this.links.get(tag);
  }

  /** Socket options of the links to controllers: frames past --max-message-mb cost the sender its connection. */
  private get socketOptions(): { maxMessageSize?: number } {
    return this.options.maxMessageBytes ? { maxMessageSize: this.options.maxMessageBytes } : {};
  }

  async listen(addresses: string[]): Promise<void> {
    const { keyPair, authorizedKeys, log } = this.options;
    const bound = await this.sockets.bindRouter<ControllerLink>({
      addresses,
      options: this.socketOptions,
      curve: keyPair && {
        keyPair,
        admit: authorizedKeys ?? [],
        decided: (decision) => {
          if (decision.allowed) log.debug({ address: decision.address, keyFingerprint: decision.client }, 'controller key accepted');
          else log.warn({ address: decision.address, keyFingerprint: decision.client }, 'controller refused: its key is not in --authorized-keys');
        },
      },
      handshakes: this.handshakeWarnings('controller'),
      peers: this.links,
      prefix: 'r',
      newPeer: (tag, routingId, send) => {
        log.info({ peer: routingId.toString('utf8') }, 'controller connected');
        return { tag, greeted: false, send };
      },
      isIdle: (peer) => !peer.greeted && peer.tag.startsWith('r'),
      receive: (link, message) => this.receive(link, message),
      malformed: (error) => this.options.malformed('controller', error),
      notSent: (error) => log.warn({ err: error.message }, 'reply to controller not delivered'),
    });
    this.bound.push(...bound);
  }

  /**
   * Links the controller of this same process (the embedded cluster): `deliver` takes what this
   * server sends it, and reports to `onDeliverError` what it could not take; the function returned
   * takes what the controller sends. The controller greets as over a socket.
   */
  linkInProcess(deliver: Deliver, onDeliverError: (error: unknown) => void): (message: Frames) => void {
    const turn: LinkTurn = { delivering: false };
    const link: ControllerLink = { tag: 'in-process', greeted: false, send: inProcessSender(deliver, onDeliverError, turn) };
    this.links.set(link.tag, link);
    return inProcessSender(
      (message) => this.receive(link, message),
      (error) => this.options.malformed('controller', error),
      turn,
    );
  }

  dial(url: string): void {
    const { keyPair, controllerKey, info, log } = this.options;
    const tag = `d${++this.dialled}`;
    const link: ControllerLink = { tag, greeted: false, send: () => {} };
    this.links.set(tag, link);
    link.send = this.sockets.dial({
      endpoint: url,
      // A local controller started beside us may not have bound yet: retry its socket file often, not every 100 ms.
      options: { ...this.socketOptions, routingId: info.id, ...(url.startsWith('ipc://') ? { reconnectInterval: 5 } : {}) },
      curve: keyPair && controllerKey ? { keyPair, serverKey: controllerKey } : undefined,
      handshakes: this.handshakeWarnings(url),
      // Announce on every (re)connection: a restarted controller has forgotten us.
      connected: () => {
        log.info({ url }, 'connected to controller');
        link.greeted = false;
        link.send(toController({ t: 'join', v: PROTOCOL_VERSION, server: info }));
      },
      disconnected: () => log.info({ url }, 'disconnected from controller'),
      receive: (message) => this.receive(link, message),
      malformed: (error) => this.options.malformed('controller', error),
    });
    log.info({ url }, 'dialling controller');
  }

  /** Tells a peer what it did wrong, a few times; then drops its garbage silently. True while it is still being answered. */
  complain(link: ControllerLink, reason: string, type: 'error' | 'refused' = 'error'): boolean {
    if (!mayComplainTo(link)) return false;
    link.send(toController({ t: type, reason }));
    if (link.complaints === MAX_COMPLAINTS) this.options.log.warn({ peer: link.tag }, 'a peer keeps sending bad messages: further ones are dropped without answer or log');
    return true;
  }

  /** Sends `head` to every greeted controller. */
  broadcast(head: ServerToController, ...rest: string[]): void {
    for (const link of this.links.values()) if (link.greeted) link.send(toController(head, ...rest));
  }

  /** Whether a controller (other than `except`) is in session: greeted, and heard from lately (a vanished one stops pinging). */
  inSession(except?: ControllerLink): boolean {
    for (const link of this.sessions()) if (link !== except) return true;
    return false;
  }

  /** The controllers in session. */
  *sessions(): Generator<ControllerLink> {
    const since = Date.now() - SILENT_CONTROLLER_MS;
    for (const link of this.links.values()) if (link.greeted && (link.heardAt ?? 0) >= since) yield link;
  }

  /** Resolves once what was sent is handed to ZeroMQ, or after `timeoutMs` (see LinkSockets.flushed). */
  flushed(timeoutMs: number): Promise<void> {
    return this.sockets.flushed(timeoutMs);
  }

  /** Closes every link's socket, each given `lingerMs` to put a goodbye on the wire. */
  close(lingerMs: number): void {
    this.sockets.close(lingerMs);
  }

  /** Every message passes here: a readable head, and a hello before anything else. */
  private receive(link: ControllerLink, message: Buffer[]): void {
    link.heardAt = Date.now();
    let head: ControllerToServer;
    try {
      head = readHead<ControllerToServer>(message[0]);
    } catch (error) {
      if (this.complain(link, describeError(error).message)) this.options.malformed('controller', error);
      return;
    }
    if (head.t === 'hello') return this.options.hello(link, head);
    if (head.t === 'refused') {
      this.options.log.error({ reason: head.reason }, 'controller refused this server');
      return;
    }
    if (!link.greeted) {
      if (this.complain(link, `'${String(head.t)}' before hello; send hello with protocol version ${PROTOCOL_VERSION} first`)) this.options.log.warn({ type: head.t }, 'message before hello dropped');
      return;
    }
    this.options.message(link, head, message);
  }

  /** Logs failed security handshakes in words a person can act on (libzmq is otherwise silent about them). */
  private handshakeWarnings(peer: string): HandshakeWatch {
    const incoming = peer === 'controller';
    const warned = new Set<string>();
    const warn = (kind: string, message: string, detail: Record<string, unknown>) => {
      if (!incoming && warned.has(kind)) return; // a dialling socket retries often: say it once
      warned.add(kind);
      this.options.log.warn(detail, message);
    };
    return {
      keyRefused: (address) =>
        warn('auth', incoming ? 'controller handshake refused' : `controller at ${peer} refused this server's key: add this server's .pub to the controller's authorizedKeys`, { address }),
      mismatch: (address, error) =>
        warn(
          'protocol',
          incoming
            ? 'controller handshake failed: security mismatch (a controller without keys, or one using the wrong server key)'
            : `handshake with controller at ${peer} failed: security mismatch (does it listen with keys? is --controller-key its key?)`,
          { address, code: error.code },
        ),
      failed: (address, error) =>
        warn('other', incoming ? 'controller handshake failed' : `handshake with controller at ${peer} failed: is --controller-key that controller's public key?`, { address, err: error.message }),
      succeeded: () => warned.clear(),
    };
  }
}
