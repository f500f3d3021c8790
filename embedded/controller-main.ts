/**
 * The controller child's entry, and the one place where the controller and a compute server meet:
 * for the embedded cluster it runs the server in this process, linked to the controller
 * in-process. The caller forks it with a ControllerLaunch in the environment.
 */
import os from 'node:os';
import { ipcEndpoint, removeSocketDirIfOwnerGone } from '../protocol/ipc-endpoint.js';
import { removeSessionDir } from '../protocol/session-dir.js';
import { logLevel } from '../runtime/log-level.js';
import { spawnWorker } from '../server/worker-pool.js';
import type { ControllerLaunch, EmbeddedCluster } from '../protocol/launch.js';

const launch = JSON.parse(process.env.TSGATHER_CONTROLLER ?? '{}') as ControllerLaunch;
// It holds secret keys: nothing this process starts may inherit it.
delete process.env.TSGATHER_CONTROLLER;
// A caller killed outright cannot remove its socket directory; we outlive it, so we do. A session's
// directory (its socket, state and log) goes with its controller, unless a successor owns it
// already, or the controller could not start: the caller then reads the log's end from it first.
process.once('exit', (code) => {
  if (!launch.session) removeSocketDirIfOwnerGone(launch.callerEndpoint);
  else if (code === 0) removeSessionDir(launch.session.dir, process.pid);
});
const level = logLevel(launch.logLevel, 'warn');

/** The embedded server's name, which its workers give in their errors too. */
const embeddedName = `local-${os.hostname()}`;

/** The embedded server's workers, started before the rest of this process loads, so that both start-ups overlap. */
function startWorkers(embedded: EmbeddedCluster): { workerEndpoint: string; workers: ReturnType<typeof spawnWorker>[] } {
  const workerEndpoint = ipcEndpoint('workers');
  return { workerEndpoint, workers: Array.from({ length: embedded.workers }, (_, i) => spawnWorker(i + 1, workerEndpoint, { ...embedded, name: embeddedName })) };
}

const prestarted = launch.embedded ? startWorkers(launch.embedded) : undefined;
const [{ runController }, { ComputeServer }, { createLogger }] = await Promise.all([import('../controller/controller-process.js'), import('../server/server.js'), import('../runtime/logger.js')]);
const server = launch.embedded
  ? new ComputeServer({
      // The options its prestarted workers were started with: the launch's, as they are.
      ...launch.embedded,
      name: embeddedName,
      exclusive: true, // started for this controller alone: its die stops the workers
      prestarted,
      logger: createLogger('server', level),
    })
  : undefined;
await runController(launch, level, server);
