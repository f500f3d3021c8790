/**
 * What spawnScatterGather's `cluster` option takes: a launcher that starts compute servers
 * elsewhere (Slurm jobs, say) which dial in to the controller's `listen` address. The caller asks
 * it for a plan before the controller starts (where to listen, which server keys to admit), hands
 * it the pool once the controller is up, and closes it when the pool closes.
 */
import type { Status } from '../protocol/status.js';

/** What a launcher reads of the pool. Polled, never listened to: a listener would keep a script alive. */
export interface PoolView {
  /** The controller's status (servers in session, jobs queued and in flight). */
  status(): Promise<Status>;
}

export interface LaunchPlan {
  /** Where the controller listens for the servers, unless spawnScatterGather's own `listen` says. */
  listen: string;
  /** Public keys (Z85) of the servers it starts: added to the controller's authorizedKeys. */
  serverKeys: string[];
}

export interface ControllerInfo {
  /** The address the controller listens on, as bound (a wildcard port resolved). */
  listening: string;
  /** The controller's public key (Z85): servers pin it. */
  publicKey: string;
}

/** A number of jobs, or of workers (rounded up to whole jobs). */
export type ScaleRequest = number | { jobs: number } | { workers: number };

/** Bounds, in jobs, for adapt(). */
export interface AdaptRange {
  min?: number;
  max?: number;
}

export interface ClusterLauncher {
  /** Checks everything that can be checked before anything runs, and makes the servers' keys. */
  prepare(): Promise<LaunchPlan>;
  /** The controller is up: submit the first servers (and wait for those the options ask to wait for). */
  start(pool: PoolView, controller: ControllerInfo): Promise<void>;
  /** Holds this many jobs (or workers' worth of jobs), submitting or draining to get there. */
  scale(request: ScaleRequest): Promise<void>;
  /** Follows the outstanding work between min and max jobs. */
  adapt(range: AdaptRange): void;
  /** Cancels every job of the cluster; called when the pool closes. */
  close(): Promise<void>;
}
