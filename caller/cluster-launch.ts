/**
 * spawnScatterGather's `cluster` option: a launcher (slurm({...})) whose servers dial in. Before
 * the controller starts, the launcher checks its options and makes the servers' keys; the
 * controller then listens where it says, with a key pair (made here, in memory, unless the caller
 * gave one) and the servers' public keys admitted. Once the controller is up the launcher submits
 * its servers; when the controller exits, for whatever reason, the launcher cancels them.
 */
import type { ChildProcess } from 'node:child_process';
import { generateKeyPair, readPublicKeysFile } from '../protocol/keys.js';
import { checkListen, resolveLinkSecurity } from '../protocol/link-security.js';
import type { Status } from '../protocol/status.js';
import type { ClusterLauncher } from '../launch/launcher.js';

export type { AdaptRange, ClusterLauncher, ScaleRequest } from '../launch/launcher.js';
import type { SpawnOptions } from './types.js';

/**
 * The spawn options with the launcher's listen address and keys filled in (the caller's own win),
 * checked as spawnScatterGather will check them; if they do not pass, the launcher is closed (its
 * keys removed) before the error is thrown.
 */
export async function withClusterPlan(options: SpawnOptions, launcher: ClusterLauncher): Promise<SpawnOptions> {
  const plan = await launcher.prepare();
  try {
    const given = options.authorizedKeys;
    const authorized = given === undefined ? [] : Array.isArray(given) ? given : readPublicKeysFile(given);
    const merged: SpawnOptions = {
      ...options,
      embedded: options.embedded ?? false,
      listen: options.listen ?? plan.listen,
      keyPair: options.keyFile || options.keyPair ? options.keyPair : generateKeyPair(),
      authorizedKeys: [...authorized, ...plan.serverKeys],
    };
    checkListen([merged.listen!].flat(), resolveLinkSecurity(merged));
    return merged;
  } catch (error) {
    await launcher.close();
    throw error;
  }
}

/** The launcher closes (cancelling its jobs) when the controller exits, for whatever reason, from the moment it is forked. */
export function closeWithController(launcher: ClusterLauncher, child: ChildProcess): void {
  child.once('exit', () => void launcher.close().catch(() => {}));
}

/** Hands the running pool to the launcher. */
export async function startCluster(launcher: ClusterLauncher, pool: { command(cmd: 'status'): Promise<unknown>; listenAddress?: string }, controllerPublicKey: string): Promise<void> {
  const listening = pool.listenAddress;
  if (!listening) throw new Error('the controller did not say where it listens; the cluster launcher needs its listen address');
  await launcher.start({ status: () => pool.command('status') as Promise<Status> }, { listening, publicKey: controllerPublicKey });
}

/** The pool's launcher, or an error saying how to have one. */
export function clusterOf(pool: { cluster?: ClusterLauncher }): ClusterLauncher {
  if (!pool.cluster) throw new Error('scale() and adapt() need a cluster launcher: spawnScatterGather([], { cluster: slurm({ ... }) })');
  return pool.cluster;
}
