/** The server's refusal of configurations that would let anyone who reaches it run code on its machine. */
import { isLoopbackEndpoint, type KeyPair } from '../protocol/index.js';

/** A configuration that would expose this machine: refused before anything is bound. */
export class InsecureConfigurationError extends Error {
  override name = 'InsecureConfigurationError';
}

export interface ServerSecurityOptions {
  bind?: string[];
  connect?: string[];
  keyPair?: KeyPair;
  authorizedKeys?: string[];
  controllerKey?: string;
  insecure?: boolean;
}

/** Refuses links that would let anyone on the network run code here; returns those --insecure lets through. */
export function checkServerSecurity(options: ServerSecurityOptions): string[] {
  const { keyPair, authorizedKeys, controllerKey, insecure } = options;
  const bind = options.bind ?? [];
  const connect = options.connect ?? [];
  if (keyPair && bind.length > 0 && !authorizedKeys?.length) {
    throw new InsecureConfigurationError('--key-file with --bind needs --authorized-keys (the public keys of the controllers to admit); without it no controller could connect');
  }
  if (keyPair && connect.length > 0 && !controllerKey) {
    throw new InsecureConfigurationError('--key-file with --connect needs --controller-key (the public key of the controller to dial)');
  }
  if (!keyPair && (authorizedKeys?.length || controllerKey)) {
    throw new InsecureConfigurationError(`${authorizedKeys?.length ? '--authorized-keys' : '--controller-key'} needs --key-file (this server's own key pair; make one with: tsgather keys generate)`);
  }
  const exposed = keyPair ? [] : [...bind, ...connect].filter((url) => !isLoopbackEndpoint(url));
  if (exposed.length > 0 && !insecure) {
    throw new InsecureConfigurationError(
      `refusing to serve ${exposed.join(', ')} without keys: anyone who can reach it could run code on this machine. ` +
        'Give --key-file with --authorized-keys (for --bind) or with --controller-key (for --connect); make keys with: tsgather keys generate. ' +
        'Or pass --insecure on a network you trust.',
    );
  }
  return exposed;
}
