/**
 * The sockets of the controller↔server links, built the same way on both sides (either may dial):
 * a ROUTER that peers dial in to, which with keys is the CURVE server of those links and admits only
 * the keys it was given; DEALERs that dial out, as CURVE clients when they know the peer's key; an
 * Outbox per socket; and the failed security handshakes that libzmq reports only as socket events.
 * What each side says about a peer, and to whom, stays with that side.
 */
import * as zmq from 'zeromq';
import { curveClientOptions, curveServerOptions, zap, type ZapDecision } from './curve.js';
import type { KeyPair } from './keys.js';
import type { Frames } from './messages.js';
import { forgetIdlePeers } from './peers.js';
import { linkOptions, Outbox, receiveLoop } from './transport.js';

/** What a failed security handshake means, by the event libzmq raised. */
export interface HandshakeWatch {
  /** A key was refused: ours by the peer we dial, or a dialling peer's by our ZAP handler. */
  keyRefused(address: string): void;
  /** One side uses keys and the other does not, or they disagree on the mechanism. */
  mismatch(address: string, error: Error & { code?: string }): void;
  /** Any other failure (a wrong server key, usually). */
  failed(address: string, error: Error & { code?: string }): void;
  /** A handshake went through. */
  succeeded?(): void;
}

export interface RouterSpec<Peer> {
  addresses: string[];
  /** Socket options over linkOptions' (a smaller maxMessageSize, say). */
  options?: { maxMessageSize?: number };
  /** With keys: this side's pair, the public keys admitted, and each ZAP decision on this router. */
  curve?: { keyPair: KeyPair; admit: string[]; decided(decision: ZapDecision): void };
  handshakes?: HandshakeWatch;
  /** Peers by key, shared with the side's other links: a new routing id becomes `prefix` + its hex. */
  peers: Map<string, Peer>;
  prefix: string;
  newPeer(key: string, routingId: Buffer, send: (message: Frames) => void): Peer;
  /** Peers out of session: the oldest are forgotten to make room (see forgetIdlePeers). */
  isIdle(peer: Peer): boolean;
  receive(peer: Peer, message: Buffer[]): void;
  malformed(error: unknown): void;
  /** Replaces the constructor's notSent for this socket. */
  notSent?(error: Error): void;
}

export interface DialSpec {
  endpoint: string;
  /** Socket options over linkOptions' (its routing id, say). */
  options: { routingId?: string; reconnectInterval?: number; maxMessageSize?: number };
  /** With the peer's public key: this side's pair and that key. */
  curve?: { keyPair: KeyPair; serverKey: string };
  handshakes: HandshakeWatch;
  connected?(): void;
  disconnected?(): void;
  receive(message: Buffer[]): void;
  malformed(error: unknown): void;
  /** Replaces the constructor's notSent for this socket. */
  notSent?(error: Error): void;
}

/**
 * Sockets one process may have. Each dialled link is a socket and the monitor behind its events
 * (two more), and libzmq allows 1,023 by default: a controller given 400 server URLs could not
 * start. It must be set before the process's first socket: this module is loaded before any.
 */
const MAX_SOCKETS = 16_384;
if (zmq.context.maxSockets < MAX_SOCKETS) zmq.context.maxSockets = MAX_SOCKETS;

/** How long a side's close() waits for its goodbyes to be handed to ZeroMQ (see flushed()). */
export const CLOSE_FLUSH_MS = 1000;

export class LinkSockets {
  private readonly sockets: zmq.Socket[] = [];
  private readonly outboxes: Outbox[] = [];

  /** `notSent` hears of each message ZeroMQ would not take (a peer gone, under mandatory routing). */
  constructor(private readonly notSent: (error: Error) => void) {}

  /** Binds a router on every address; returns the endpoints bound (wildcard ports resolved). */
  async bindRouter<Peer>(spec: RouterSpec<Peer>): Promise<string[]> {
    let security = {};
    if (spec.curve) {
      const { keyPair, admit, decided } = spec.curve;
      const domain = await zap.admit(admit);
      zap.onDecision((decision) => {
        if (decision.domain === domain) decided(decision);
      });
      security = curveServerOptions(keyPair, domain);
    }
    const router = new zmq.Router(linkOptions({ mandatory: true, ...spec.options, ...security }));
    const outbox = this.track(router, spec.notSent);
    if (spec.handshakes) watchHandshakes(router, spec.handshakes);
    const bound: string[] = [];
    for (const address of spec.addresses) {
      await router.bind(address).catch((error: Error) => {
        // libzmq says only "Address already in use": which address is what the user has to fix.
        throw new Error(`cannot listen on ${address}: ${error.message.toLowerCase()}`, { cause: error });
      });
      bound.push(router.lastEndpoint ?? address);
    }
    const { peers, prefix } = spec;
    void receiveLoop(
      router,
      ([routingId, ...message]) => {
        const key = prefix + routingId!.toString('hex');
        let peer = peers.get(key);
        if (!peer) {
          peer = spec.newPeer(key, routingId!, (m) => outbox.post([routingId!, ...m]));
          forgetIdlePeers(peers, (known) => spec.isIdle(known));
          peers.set(key, peer);
        }
        spec.receive(peer, message);
      },
      (error) => spec.malformed(error),
    );
    return bound;
  }

  /** Dials a peer; returns the send of the link. ZeroMQ reconnects on its own. */
  dial(spec: DialSpec): (message: Frames) => void {
    const curve = spec.curve ? curveClientOptions(spec.curve.keyPair, spec.curve.serverKey) : {};
    const dealer = new zmq.Dealer(linkOptions({ ...spec.options, ...curve }));
    const outbox = this.track(dealer, spec.notSent);
    watchHandshakes(dealer, spec.handshakes);
    if (spec.connected) dealer.events.on('connect', () => spec.connected!());
    if (spec.disconnected) dealer.events.on('disconnect', () => spec.disconnected!());
    dealer.connect(spec.endpoint);
    void receiveLoop(
      dealer,
      (message) => spec.receive(message),
      (error) => spec.malformed(error),
    );
    return (message) => outbox.post(message);
  }

  /**
   * Resolves once everything posted on every link has been handed to ZeroMQ, or after `timeoutMs`.
   * A router with mandatory routing takes nothing while no peer can: when the last peer that
   * dialled in is gone, what was queued for it waits for a peer that may never come.
   */
  async flushed(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(this.outboxes.map((outbox) => outbox.flushed()));
    await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Closes every socket, each given `lingerMs` to put what it holds (a goodbye) on the wire. */
  close(lingerMs: number): void {
    for (const socket of this.sockets) {
      socket.linger = lingerMs;
      socket.close();
    }
  }

  private track(socket: zmq.Socket & zmq.Writable, notSent = this.notSent): Outbox {
    this.sockets.push(socket);
    const outbox = new Outbox(socket, (error) => notSent(error));
    this.outboxes.push(outbox);
    return outbox;
  }
}

/** Turns the handshake events libzmq raises on a socket into the calls of `watch`. */
function watchHandshakes(socket: zmq.Socket, watch: HandshakeWatch): void {
  socket.events.on('handshake:error:auth', ({ address }) => watch.keyRefused(address));
  socket.events.on('handshake:error:protocol', ({ address, error }) => watch.mismatch(address, error));
  socket.events.on('handshake:error:other', ({ address, error }) => watch.failed(address, error));
  socket.events.on('handshake', () => watch.succeeded?.());
}
