/**
 * A worker process, as its pool spawns it: reads its id, endpoint and options from its
 * environment, makes its socket, and runs a WorkerRuntime (worker-runtime.ts), where user code runs.
 */
import * as zmq from 'zeromq';
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { linkOptions } from '../protocol/transport.js';
import { WorkerRuntime } from './worker-runtime.js';

/** Set at spawn, or, for a spare, when its server promotes it (see promotion()). */
let workerId = Number(process.env.TSGATHER_WORKER_ID ?? NaN);
const endpoint = process.env.TSGATHER_WORKER_ENDPOINT!;

// Cells and definitions expect CommonJS `require` too; the worker is ESM.
(globalThis as Record<string, unknown>).require ??= createRequire(path.join(process.cwd(), 'noop.js'));

// Started early by a controller child, a worker may be up before its server's socket is bound: retry the ipc connect quickly.
// Its routing id is set just before it connects: a spare learns its id only then.
const socket = new zmq.Dealer(linkOptions({ reconnectInterval: 5 }));

/**
 * A spare is started with no id and waits, Node and its own modules loaded, until its server
 * writes the id it takes as a line on its stdin: a refresh or a crash then has a worker ready in
 * milliseconds rather than a Node start-up later.
 */
function promotion(): Promise<number> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const newline = text.indexOf('\n');
      if (newline < 0) return;
      process.stdin.off('data', onData);
      resolve(Number(text.slice(0, newline)));
    };
    process.stdin.on('data', onData);
  });
}

// A worker must not outlive its server: the server holds our stdin, and its end means the server is gone.
process.stdin.on('end', () => process.exit(0));
// Listening before anything is awaited: a flowing stdin drops what arrives with no 'data' listener.
const promoted = Number.isNaN(workerId) ? promotion() : undefined;
process.stdin.resume();
// A spare tells its pool that it has loaded, on the pipe the pool gave it for that alone.
if (promoted && process.env.TSGATHER_SPARE_FD) writeSync(Number(process.env.TSGATHER_SPARE_FD), 'loaded\n');

if (promoted) workerId = await promoted;
const runtime = new WorkerRuntime(socket, {
  id: workerId,
  // A spare imports --module only once promoted (start() imports it): a refresh runs the module as it is on disk then, and
  // spares hold no second copy of what it loads (nor anything it takes for itself, a port, say).
  module: process.env.TSGATHER_MODULE,
  maxRssBytes: Number(process.env.TSGATHER_WORKER_MAX_RSS_MB ?? 0) * 1024 * 1024,
});
await runtime.start(endpoint);
