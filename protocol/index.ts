export * from './codec.js';
export * from './messages.js';
export * from './job-values.js';
export * from './transport.js';
export * from './keys.js';
export * from './curve.js';
export * from './peers.js';
export * from './in-process.js';
