/** What the caller tells the controller child it forks (as JSON in the environment, never argv). */
import type { LinkSecurity } from './link-security.js';
import type { SessionSettings } from './session-dir.js';

/** The embedded compute server, run inside the controller process: it forks the workers. */
export interface EmbeddedCluster {
  workers: number;
  workerHeapMb?: number;
  workerMaxRssMb?: number;
  spareWorkers?: number;
}

/** A named session (spawnScatterGather's `session`): the controller outlives its callers. */
export interface SessionLaunch {
  name: string;
  /** The session's private directory (see session-dir.ts). */
  dir: string;
  /** A detached session with nothing outstanding ends after this long. */
  idleMs: number;
  /** Most bytes of results held for callers before dispatch pauses. */
  holdBytes: number;
  /** The caller starting it: attached until it detaches or its process ends. */
  callerPid: number;
  settings: SessionSettings;
}

export interface ControllerLaunch {
  /** The caller's PAIR endpoint, which the controller dials; in a session, the session's, which the controller binds. */
  callerEndpoint: string;
  controllerId: string;
  urls: string[];
  listen: string[];
  /** The embedded local server, when the caller wants one. */
  embedded?: EmbeddedCluster;
  retries: number;
  timeoutRetries?: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** This controller's share of shared servers' workers against other sessions' (default 1). */
  weight?: number;
  /** Jobs asking for labels no connected server carries fail after this long (default: they wait). */
  placementTimeoutMs?: number;
  /** Key pair, server keys, authorized keys: resolved by the caller, passed in the environment (never argv). */
  security: LinkSecurity;
  /** pino level for the controller and the embedded server (default: $TSGATHER_LOG_LEVEL or warn). */
  logLevel?: string;
  session?: SessionLaunch;
}
