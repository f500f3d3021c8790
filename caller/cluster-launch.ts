/**
 * spawnScatterGather's `cluster` option: a launcher (slurm({...})), or several (one per kind of
 * node), whose servers dial in. Before the controller starts, each launcher checks its options and
 * makes its servers' keys; the controller then listens where the first says, with a key pair (made
 * here, in memory, unless the caller gave one) and every launcher's server keys admitted. Once the
 * controller is up the launchers submit their servers; when the controller exits, for whatever
 * reason, they cancel them.
 */
import type { ChildProcess } from 'node:child_process';
import { generateKeyPair, readPublicKeysFile } from '../protocol/keys.js';
import { checkListen, resolveLinkSecurity } from '../protocol/link-security.js';
import type { Status } from '../protocol/status.js';
import type { ClusterLauncher, LaunchPlan } from '../launch/launcher.js';

export type { AdaptRange, ClusterLauncher, ScaleRequest } from '../launch/launcher.js';
/** spawnScatterGather's `cluster` option. */
export type Cluster = ClusterLauncher | ClusterLauncher[];
import type { SpawnOptions } from './types.js';

/**
 * The spawn options with the launcher's listen address and keys filled in (the caller's own win),
 * checked as spawnScatterGather will check them; if they do not pass, the launcher is closed (its
 * keys removed) before the error is thrown.
 */
export async function withClusterPlan(options: SpawnOptions, cluster: Cluster): Promise<SpawnOptions> {
  const launchers = [cluster].flat();
  if (launchers.length === 0) throw new TypeError('cluster: give a launcher, e.g. slurm({ ... }), or a list of them');
  const plans: LaunchPlan[] = [];
  try {
    for (const launcher of launchers) plans.push(await launcher.prepare());
    const given = options.authorizedKeys;
    const authorized = given === undefined ? [] : Array.isArray(given) ? given : readPublicKeysFile(given);
    const merged: SpawnOptions = {
      ...options,
      embedded: options.embedded ?? false,
      listen: options.listen ?? plans[0]!.listen,
      keyPair: options.keyFile || options.keyPair ? options.keyPair : generateKeyPair(),
      authorizedKeys: [...authorized, ...plans.flatMap((plan) => plan.serverKeys)],
    };
    checkListen([merged.listen!].flat(), resolveLinkSecurity(merged));
    return merged;
  } catch (error) {
    for (const launcher of launchers) await launcher.close();
    throw error;
  }
}

/** The launchers close (cancelling their jobs) when the controller exits, for whatever reason, from the moment it is forked. */
export function closeWithController(cluster: Cluster, child: ChildProcess): void {
  for (const launcher of [cluster].flat()) child.once('exit', () => void launcher.close().catch(() => {}));
}

/** Hands the running pool to the launchers, one after the other. */
export async function startCluster(cluster: Cluster, pool: { command(cmd: 'status'): Promise<unknown>; listenAddress?: string }, controllerPublicKey: string): Promise<void> {
  const listening = pool.listenAddress;
  if (!listening) throw new Error('the controller did not say where it listens; the cluster launcher needs its listen address');
  for (const launcher of [cluster].flat()) await launcher.start({ status: () => pool.command('status') as Promise<Status> }, { listening, publicKey: controllerPublicKey });
}

/** The pool's one launcher, or an error saying what to do instead. */
export function clusterOf(pool: { cluster?: Cluster }): ClusterLauncher {
  if (!pool.cluster) throw new Error('scale() and adapt() need a cluster launcher: spawnScatterGather([], { cluster: slurm({ ... }) })');
  if (Array.isArray(pool.cluster)) throw new Error('this pool has several cluster launchers: call scale() or adapt() on each of them');
  return pool.cluster;
}
