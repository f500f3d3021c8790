export * from './codec.js';
export * from './messages.js';
export * from './transport.js';
