/**
 * Loaded into the controller child for the memory measure only (NODE_OPTIONS=--expose-gc --import
 * <this>): on SIGUSR2 it runs a full garbage collection and then writes process.memoryUsage() as
 * JSON, with a round count, to TSG_GC_DONE_DIR/<pid>, so the bench reads resident memory that is
 * live, not garbage V8 has yet to collect, and how much of it is V8's heap. Other processes that load it (the bench forks them with the same environment) only
 * listen.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const directory = process.env.TSG_GC_DONE_DIR;
const collect = (globalThis as { gc?: () => void }).gc;
if (directory && collect) {
  let round = 0;
  process.on('SIGUSR2', () => {
    collect();
    writeFileSync(join(directory, String(process.pid)), JSON.stringify({ round: ++round, ...process.memoryUsage() }));
  });
}
