/** Asks this process and every descendant that loaded preload.ts to write its profile, and waits for the files. */
import { existsSync, readdirSync } from 'node:fs';
import { descendants, processesWithEnv } from '../proc.js';
import { sleep } from '../stats.js';

const WAIT_MS = 10_000;

export async function writeProfiles(directory: string): Promise<number> {
  if (process.env.BENCH_PROFILE_DIR !== directory) return 0; // not a profiled run: nobody would answer SIGUSR2
  const profiled = new Set(processesWithEnv('BENCH_PROFILE_DIR', directory));
  const pids = [process.pid, ...descendants(process.pid).filter((pid) => profiled.has(pid))];
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  const written = (pid: number) => existsSync(directory) && readdirSync(directory).some((name) => name.endsWith(`-${pid}.cpuprofile`));
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline && !pids.every(written)) await sleep(50);
  return pids.filter(written).length;
}
