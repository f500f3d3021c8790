#!/usr/bin/env node
/** The kernel process: `node dist/kernel/main.js <connection_file>`, as a kernelspec's argv runs it. */
import { readConnectionFile } from './connection.js';
import { Kernel } from './kernel.js';
import { kernelLogger } from './log.js';
import { killDescendantsNow } from './process-tree.js';

/** If whoever started the kernel dies without shutting it down, the kernel goes too. */
const PARENT_CHECK_MS = 2000;

const log = kernelLogger();
const connectionFile = process.argv[2];
if (!connectionFile) {
  log.fatal('usage: main.js <connection_file>');
  process.exit(2);
}

const kernel = await Kernel.start({ info: await readConnectionFile(connectionFile), cwd: process.cwd(), log });
process.on('SIGINT', () => void kernel.executor.interrupt());
process.on('SIGTERM', () => void kernel.shutdown());
process.on('exit', () => killDescendantsNow());
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void kernel.shutdown();
}, PARENT_CHECK_MS).unref();

await kernel.exited;
process.exit(0);
