/** Which part of the engine a Node process is, from its main script's path. */
import { basename, dirname } from 'node:path';
import { commandLine, cpuTicks, descendants, TICKS_PER_SECOND } from '../proc.js';

const ROLES: Record<string, string> = {
  'embedded/controller-main.js': 'controller',
  'cli/main.js': 'server',
  'server/worker.js': 'worker',
  'kernel/main.js': 'kernel',
  'raw-zmq/worker.js': 'raw-worker',
};

export function roleOf(script: string | undefined): string {
  if (!script) return 'node';
  return ROLES[`${basename(dirname(script))}/${basename(script)}`] ?? 'caller';
}

/** CPU seconds used so far by this process and each descendant, summed by role. */
export function cpuSecondsByRole(): Map<string, number> {
  const byRole = new Map<string, number>([['caller', cpuTicks('self', true) / TICKS_PER_SECOND]]);
  for (const pid of descendants(process.pid)) {
    const script = commandLine(pid)
      .split(' ')
      .find((arg) => arg.endsWith('.js'));
    const role = roleOf(script);
    byRole.set(role, (byRole.get(role) ?? 0) + cpuTicks(pid, true) / TICKS_PER_SECOND);
  }
  return byRole;
}
