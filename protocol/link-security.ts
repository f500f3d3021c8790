/**
 * The controller's side of CurveZMQ: which key pair it uses, which server key each URL must
 * present, which servers may dial in. Resolved in the caller (so a bad key file fails
 * spawnScatterGather at once) and checked again in the controller child for every dial.
 */
import { isLoopbackEndpoint, normalizeKey, parsePublicKeys, publicKeyArgument, readKeyPairFile, readPublicKeysFile, type KeyPair } from './index.js';
import type { ServerAddress } from './server-url.js';

export interface LinkSecurity {
  keyPair?: KeyPair;
  /** Server public keys (Z85) by endpoint ('tcp://host:port'). */
  serverKeys: Record<string, string>;
  /** The server key for endpoints with none of their own. */
  serverKey?: string;
  /** Public keys of the servers admitted on `listen`. */
  authorizedKeys?: string[];
  insecure: boolean;
}

/** The key options of spawnScatterGather: which keys this controller has, and which it trusts. */
export interface LinkSecurityOptions {
  /**
   * This controller's secret key file (from `tsgather keys generate`), or the pair itself: needed to
   * dial servers that have keys and to let servers dial in with keys. Servers list its .pub in --authorized-keys.
   */
  keyFile?: string;
  keyPair?: { publicKey: string; secretKey: string };
  /** Public key (Z85, hex, or a .pub file) of every server dialled whose URL has no `?key=`. */
  serverKey?: string;
  /** Public keys (or .pub files) of servers by endpoint, e.g. { 'tcp://hq1:5555': '/keys/hq1.pub' }. */
  serverKeys?: Record<string, string>;
  /** Servers admitted to `listen`: an authorized-keys file (one public key per line, # comments) or a list of keys. */
  authorizedKeys?: string | string[];
  /** Allow links beyond this machine without keys (dialling, or listening on, a non-loopback address). */
  insecure?: boolean;
}

/** A link that would be unauthenticated beyond this machine, or keys that do not fit together. */
export class InsecureLinkError extends Error {
  override name = 'InsecureLinkError';
}

export function resolveLinkSecurity(options: LinkSecurityOptions): LinkSecurity {
  const keyPair = options.keyFile
    ? readKeyPairFile(options.keyFile)
    : options.keyPair
      ? { publicKey: normalizeKey(options.keyPair.publicKey, 'keyPair.publicKey'), secretKey: normalizeKey(options.keyPair.secretKey, 'keyPair.secretKey') }
      : undefined;
  const serverKeys: Record<string, string> = {};
  for (const [endpoint, key] of Object.entries(options.serverKeys ?? {})) serverKeys[endpoint] = publicKeyArgument(key, `serverKeys['${endpoint}']`);
  const authorized = options.authorizedKeys;
  return {
    keyPair,
    serverKeys,
    serverKey: options.serverKey ? publicKeyArgument(options.serverKey, 'serverKey') : undefined,
    authorizedKeys: authorized === undefined ? undefined : Array.isArray(authorized) ? parsePublicKeys(authorized.join('\n'), 'authorizedKeys') : readPublicKeysFile(authorized),
    insecure: options.insecure ?? false,
  };
}

/** The server key to demand when dialling this address; throws when the dial would be unsafe. */
export function serverKeyFor(address: ServerAddress, security: LinkSecurity): string | undefined {
  const serverKey = address.serverKey ?? security.serverKeys[address.endpoint] ?? security.serverKey;
  if (serverKey && !security.keyPair) {
    throw new InsecureLinkError(`${address.endpoint} has a server key, so this controller needs its own key pair: give keyFile (make one with: tsgather keys generate)`);
  }
  if (!serverKey && !security.insecure && !isLoopbackEndpoint(address.endpoint)) {
    throw new InsecureLinkError(
      `refusing to dial ${address.endpoint} without its server key: the link would be neither encrypted nor authenticated. ` +
        "Give the server's public key (URL ?key=<hex>, or serverKey/serverKeys) and keyFile, or insecure: true on a network you trust.",
    );
  }
  return serverKey;
}

/** Throws when listening where servers beyond this machine could dial in unauthenticated. */
export function checkListen(addresses: string[], security: LinkSecurity): void {
  if (security.authorizedKeys && !security.keyPair) throw new InsecureLinkError("authorizedKeys needs this controller's own key pair: give keyFile (make one with: tsgather keys generate)");
  if (security.keyPair && security.authorizedKeys?.length) return;
  const exposed = addresses.filter((address) => !isLoopbackEndpoint(address));
  if (exposed.length > 0 && !security.insecure) {
    throw new InsecureLinkError(
      `refusing to listen on ${exposed.join(', ')} without keys: any machine that reaches it could join as a server and receive your jobs. ` +
        'Give keyFile and authorizedKeys (the public keys of the servers that dial in), or insecure: true on a network you trust.',
    );
  }
}
