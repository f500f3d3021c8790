/** What the caller tells the controller child it forks (as JSON in the environment, never argv). */
import type { LinkSecurity } from './link-security.js';

export interface ControllerLaunch {
  callerEndpoint: string;
  controllerId: string;
  urls: string[];
  listen: string[];
  /** Workers of the embedded local server; none is started when undefined. */
  embeddedWorkers?: number;
  workerHeapMb?: number;
  workerMaxRssMb?: number;
  retries: number;
  timeoutRetries?: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** Key pair, server keys, authorized keys: resolved by the caller, passed in the environment (never argv). */
  security: LinkSecurity;
  /** pino level for the controller and the embedded server (default: $TSGATHER_LOG_LEVEL or warn). */
  logLevel?: string;
}
