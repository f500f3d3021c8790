/**
 * The controller child's entry. The caller forks it with a ControllerLaunch in the environment
 * (and, for the embedded cluster, the compute server to run inside it).
 */
import { logLevel } from '../protocol/log-level.js';
import { runController } from './controller-process.js';
import type { ControllerLaunch } from './launch.js';

export type { ControllerLaunch } from './launch.js';

const launch = JSON.parse(process.env.TSGATHER_CONTROLLER ?? '{}') as ControllerLaunch;
// It holds secret keys: nothing this process starts may inherit it.
delete process.env.TSGATHER_CONTROLLER;
await runController(launch, logLevel(launch.logLevel, 'warn'));
