/** What the caller tells the controller child it forks (as JSON in the environment, never argv). */
import type { KeyPair } from '../protocol/keys.js';
import type { LinkSecurity } from './link-security.js';

/** The link to the embedded server the caller forked: where to listen for it, and the keys on it. */
export interface EmbeddedLink {
  endpoint: string;
  controllerKeys: KeyPair;
  serverKey: string;
}

export interface ControllerLaunch {
  callerEndpoint: string;
  controllerId: string;
  urls: string[];
  listen: string[];
  /** The embedded local server, when the caller started one. */
  embedded?: EmbeddedLink;
  retries: number;
  timeoutRetries?: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** Key pair, server keys, authorized keys: resolved by the caller, passed in the environment (never argv). */
  security: LinkSecurity;
  /** pino level for the controller and the embedded server (default: $TSGATHER_LOG_LEVEL or warn). */
  logLevel?: string;
}
