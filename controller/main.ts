/**
 * The controller child's entry. The caller forks it with a ControllerLaunch in the environment.
 * The embedded server is forked first, before the controller's own modules load, so that the two
 * processes start up side by side rather than one after the other.
 */
import { logLevel } from '../protocol/log-level.js';
import { forkEmbeddedServer } from './embedded-server.js';
import type { ControllerLaunch } from './launch.js';

export type { ControllerLaunch } from './launch.js';

const launch = JSON.parse(process.env.TSGATHER_CONTROLLER ?? '{}') as ControllerLaunch;
// It may hold our secret key: the embedded server and its workers (user code) must not inherit it.
delete process.env.TSGATHER_CONTROLLER;
const level = logLevel(launch.logLevel, 'warn');
const embedded = launch.embeddedWorkers ? forkEmbeddedServer(launch, launch.embeddedWorkers, level) : undefined;
const { runController } = await import('./controller-process.js');
await runController(launch, level, embedded);
