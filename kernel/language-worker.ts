/**
 * The language worker thread: TypeScript's language service, kept warm for the kernel's whole
 * life, off the kernel thread (whose sockets and heartbeat must not wait for a type check) and
 * off the cell worker (so that completion does not wait for a running cell, nor slow it).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { FromLanguageWorker, ToLanguageWorker } from './language-messages.js';
import { CellLanguageService } from './language-service.js';

const port = parentPort!;
const service = new CellLanguageService((workerData as { cwd: string }).cwd);

port.on('message', (message: ToLanguageWorker) => {
  let reply: FromLanguageWorker;
  try {
    service.addCells(message.cells, message.reset);
    const value = message.op === 'complete' ? service.complete(message.code, message.cursor) : service.inspect(message.code, message.cursor, message.detail);
    reply = { id: message.id, value };
  } catch (error) {
    reply = { id: message.id, error: (error as Error).stack ?? String(error) };
  }
  port.postMessage(reply);
});
