/**
 * Loaded into every Node process of a profiling run (NODE_OPTIONS=--import .../preload.js, with
 * BENCH_PROFILE_DIR set): starts V8's CPU profiler at once and writes the profile when the
 * process gets SIGUSR2. `node --cpu-prof` only writes at a clean exit, and the engine's workers
 * end by SIGKILL, so their profiles would be lost.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { roleOf } from './roles.js';

const directory = process.env.BENCH_PROFILE_DIR;
const SAMPLING_INTERVAL_US = 500;

if (directory && isMainThread) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
  session.post('Profiler.start');
  let written = false;
  process.on('SIGUSR2', () => {
    if (written) return;
    written = true;
    session.post('Profiler.stop', (error, result) => {
      if (error) return process.stderr.write(`profile of ${process.pid} lost: ${error.message}\n`);
      writeFileSync(join(directory, `${roleOf(process.argv[1])}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
