export { spawnScatterGather, ScatterGather, type Status } from './client.js';
export * from './types.js';
export { SerializationError } from '../protocol/codec.js';
