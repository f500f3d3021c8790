export { ScatterGather } from './scatter-gather.js';
export type { ScatterGatherEvents } from './pool-events.js';
export { spawnScatterGather } from './spawn.js';
export * from './types.js';
export { CaptureError, imported, ModuleBinding, type ScopeLookup } from './definition-capture.js';
export type { SyncedModule } from './definition-shipping.js';
export * from './session-types.js';
export type { Status, ServerStatus, WorkerStatus, ControllerEvent } from '../protocol/status.js';
export { SerializationError } from '../protocol/codec.js';
export {
  slurm,
  SlurmLauncher,
  SlurmConfigError,
  SlurmUnavailableError,
  SlurmCommandError,
  type SlurmOptions,
  type SlurmClusterStatus,
  type SlurmJobStatus,
  type AdaptRange,
  type ScaleRequest,
  type ClusterLauncher,
} from '../launch/index.js';
export { STREAM_WINDOW, STREAM_WINDOW_BYTES } from '../protocol/messages.js';
export type { ItemSource } from './item-stream.js';
