/**
 * The controller child's entry. The caller forks it with a ControllerLaunch in the environment
 * (and, for the embedded cluster, the compute server to run inside it).
 */
import { ipcEndpoint, removeSocketDirIfOwnerGone } from '../protocol/ipc-endpoint.js';
import { logLevel } from '../protocol/log-level.js';
import { spawnWorker } from '../server/worker-pool.js';
import type { ControllerLaunch, EmbeddedCluster } from './launch.js';

export type { ControllerLaunch } from './launch.js';

const launch = JSON.parse(process.env.TSGATHER_CONTROLLER ?? '{}') as ControllerLaunch;
// It holds secret keys: nothing this process starts may inherit it.
delete process.env.TSGATHER_CONTROLLER;
// A caller killed outright cannot remove its socket directory; we outlive it, so we do.
process.once('exit', () => removeSocketDirIfOwnerGone(launch.callerEndpoint));

/** The embedded server's workers, started before the rest of this process loads, so that both start-ups overlap. */
function startWorkers(embedded: EmbeddedCluster): { workerEndpoint: string; workers: ReturnType<typeof spawnWorker>[] } {
  const workerEndpoint = ipcEndpoint('workers');
  // The same options the embedded server's pool forks its later workers with (see controller-process.ts).
  return { workerEndpoint, workers: Array.from({ length: embedded.workers }, (_, i) => spawnWorker(i + 1, workerEndpoint, embedded)) };
}

const prestarted = launch.embedded ? startWorkers(launch.embedded) : undefined;
const { runController } = await import('./controller-process.js');
await runController(launch, logLevel(launch.logLevel, 'warn'), prestarted);
