export { ScatterGather, type ScatterGatherEvents } from './scatter-gather.js';
export { spawnScatterGather } from './spawn.js';
export * from './types.js';
export * from './session-types.js';
export type { Status, ServerStatus, WorkerStatus, ControllerEvent } from '../protocol/status.js';
export { SerializationError } from '../protocol/codec.js';
