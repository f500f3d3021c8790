/** Launchers of compute servers on cluster managers, for spawnScatterGather's `cluster` option and `tsgather cluster up`. */
export { slurm, SlurmLauncher, type SlurmClusterStatus, type SlurmJobStatus } from './slurm-launcher.js';
export type { SlurmOptions } from './slurm-options.js';
export type { AdaptRange, ClusterLauncher, ScaleRequest } from './launcher.js';
export { SlurmUnavailableError, SlurmCommandError } from './slurm-commands.js';
export { SlurmConfigError } from './slurm-checks.js';
