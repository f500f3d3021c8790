/** How the controller child is started: its script, its Node flags and its environment (the launch, as JSON, never in argv). */
import { fileURLToPath } from 'node:url';
import type { ControllerLaunch } from '../protocol/launch.js';
import { withMallocTunables } from '../runtime/malloc-tunables.js';
import { YOUNG_GENERATION_FLAGS } from '../runtime/v8-flags.js';
import { inheritableExecArgv } from './exec-argv.js';

export const controllerScript = fileURLToPath(new URL('../embedded/controller-main.js', import.meta.url));

/** The caller's own flags come last, so they win; those naming the caller's own program stay behind. */
export function controllerExecArgv(): string[] {
  return [...YOUNG_GENERATION_FLAGS, ...inheritableExecArgv(process.execArgv)];
}

export function controllerEnv(launch: ControllerLaunch): NodeJS.ProcessEnv {
  return { ...withMallocTunables(process.env), TSGATHER_CONTROLLER: JSON.stringify(launch) };
}
