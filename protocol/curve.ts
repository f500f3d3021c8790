/**
 * CurveZMQ on the controller↔server links. The side that binds is the CURVE server: it holds a
 * key pair and admits only clients whose public keys it was given, through a ZAP handler; the
 * side that dials must know the binder's public key, so it also authenticates the server.
 */
import * as zmq from 'zeromq';
import { fingerprint, type KeyPair } from './keys.js';
import { z85Encode } from './z85.js';

/** Options that make a socket the CURVE server of its links, admitting keys registered for `domain`. */
export function curveServerOptions(pair: KeyPair, domain: string) {
  return { curveServer: true, curvePublicKey: pair.publicKey, curveSecretKey: pair.secretKey, zapDomain: domain };
}

/** Options that make a socket a CURVE client of a server whose public key is `serverKey`. */
export function curveClientOptions(pair: KeyPair, serverKey: string) {
  return { curveServerKey: serverKey, curvePublicKey: pair.publicKey, curveSecretKey: pair.secretKey };
}

export interface ZapDecision {
  domain: string;
  address: string;
  allowed: boolean;
  /** Fingerprint of the client's public key (safe to log; the key itself is public too). */
  client: string;
}

const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
/** ZAP requests are a handful of short frames; anything bigger is not one. */
const ZAP_MAX_MESSAGE = 4096;

/**
 * The process's ZAP handler (libzmq asks it about every CURVE handshake on every socket of the
 * default context). Each CURVE-server socket gets its own domain and list of admitted keys.
 */
class ZapAuthenticator {
  private readonly domains = new Map<string, Set<string>>();
  private readonly listeners = new Set<(decision: ZapDecision) => void>();
  private socket?: zmq.Router;
  private nextDomain = 1;

  /** Registers the public keys (Z85) admitted on a new domain; returns the domain. */
  async admit(keys: Iterable<string>): Promise<string> {
    if (!this.socket) {
      const socket = new zmq.Router({ linger: 0, maxMessageSize: ZAP_MAX_MESSAGE });
      await socket.bind(ZAP_ENDPOINT);
      this.socket = socket;
      void this.serve(socket);
    }
    const domain = `tsgather-${this.nextDomain++}`;
    this.domains.set(domain, new Set(keys));
    return domain;
  }

  onDecision(listener: (decision: ZapDecision) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async serve(socket: zmq.Router): Promise<void> {
    try {
      for await (const [routingId, delimiter, version, requestId, domainFrame, addressFrame, , mechanism, clientKey] of socket) {
        const domain = domainFrame?.toString() ?? '';
        const keyText = clientKey?.length === 32 ? z85Encode(clientKey) : undefined;
        const allowed = version?.toString() === '1.0' && mechanism?.toString() === 'CURVE' && keyText !== undefined && (this.domains.get(domain)?.has(keyText) ?? false);
        const reply = [
          routingId!,
          delimiter ?? Buffer.alloc(0),
          '1.0',
          requestId ?? Buffer.alloc(0),
          allowed ? '200' : '400',
          allowed ? 'OK' : 'key not authorized',
          allowed ? fingerprint(keyText!) : '',
          '',
        ];
        await socket.send(reply);
        const decision = { domain, address: addressFrame?.toString() ?? '', allowed, client: clientKey?.length === 32 ? fingerprint(clientKey) : 'none' };
        for (const listener of this.listeners) listener(decision);
      }
    } catch (error) {
      if (!socket.closed) throw error;
    }
  }
}

export const zap = new ZapAuthenticator();

/** True for endpoints only this machine can reach: ipc, inproc, 127.0.0.0/8, ::1, localhost. */
export function isLoopbackEndpoint(endpoint: string): boolean {
  if (/^(ipc|inproc):\/\//.test(endpoint)) return true;
  const match = /^tcp:\/\/(?:.*;)?(\[[^\]]+\]|[^:/]+):[^:/]+$/.exec(endpoint);
  if (!match) return false;
  const host = match[1]!.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Environment variable through which a parent hands a child its key pair (never argv: ps shows argv). */
export const KEY_PAIR_ENV = 'TSGATHER_KEY_PAIR';

/** Reads and removes the key pair a parent passed; removed so that worker processes never inherit it. */
export function takeKeyPairFromEnv(): KeyPair | undefined {
  const text = process.env[KEY_PAIR_ENV];
  delete process.env[KEY_PAIR_ENV];
  if (!text) return undefined;
  const pair = JSON.parse(text) as KeyPair;
  return { publicKey: pair.publicKey, secretKey: pair.secretKey };
}
