/** `tsgather sessions`: this user's named sessions (spawnScatterGather({ session })): list them, end one. */
import { Command } from 'commander';
import { checkSessionName, listSessions, readSessionState, removeSessionDir, sessionPaths, stateProcessAlive } from '../protocol/session-dir.js';
import { EXIT, fail } from './exit-codes.js';

/** How long `end` waits for the controller to stop its workers and exit before it kills it. */
const END_GRACE_MS = 10_000;

function ago(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

function list(json: boolean): void {
  const sessions = listSessions();
  if (json) {
    process.stdout.write(
      `${JSON.stringify(
        sessions.map(({ name, dir, alive, state }) => ({ name, dir, alive, ...state })),
        null,
        2,
      )}\n`,
    );
    return;
  }
  if (sessions.length === 0) {
    process.stdout.write('no sessions\n');
    return;
  }
  const rows = sessions.map(({ name, alive, state }) => [
    name,
    state ? String(state.pid) : '-',
    !alive ? 'gone' : state?.starting ? 'starting' : state?.attachedPid !== undefined ? `attached (pid ${state.attachedPid})` : 'detached',
    state ? ago(state.started) : '-',
    state ? `${Math.round(state.idleMs / 1000)}s` : '-',
    state?.log ?? '-',
  ]);
  const table = [['NAME', 'PID', 'STATE', 'STARTED', 'IDLE END', 'LOG'], ...rows];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  for (const row of table)
    process.stdout.write(
      `${row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd()}\n`,
    );
}

async function end(name: string): Promise<void> {
  try {
    checkSessionName(name);
  } catch (error) {
    return fail((error as Error).message, EXIT.usage);
  }
  const { dir } = sessionPaths(name);
  const state = readSessionState(dir);
  if (!state || !stateProcessAlive(state)) {
    if (state) removeSessionDir(dir, state.pid); // what a killed controller left
    return fail(`no session named '${name}' is running`, EXIT.notRunning);
  }
  // SIGTERM: the controller stops its workers, says goodbye to its servers, and removes its directory.
  process.kill(state.pid, 'SIGTERM');
  const deadline = Date.now() + END_GRACE_MS;
  while (stateProcessAlive(state) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  if (stateProcessAlive(state)) {
    process.kill(state.pid, 'SIGKILL');
    process.stderr.write(`session '${name}' did not stop within ${END_GRACE_MS / 1000} s: killed\n`);
  }
  removeSessionDir(dir, state.pid);
  process.stdout.write(`ended session '${name}' (pid ${state.pid})\n`);
}

export function sessionsCommand(): Command {
  const sessions = new Command('sessions').description("this user's named sessions (spawnScatterGather({ session: 'name' })), which outlive the notebooks and scripts that use them");
  sessions
    .command('list', { isDefault: true })
    .description('list them: pid, whether a caller is attached, when they started, their log')
    .option('--json', 'as JSON: each with its state file')
    .action((opts: { json?: boolean }) => list(opts.json === true));
  sessions
    .command('end <name>')
    .description('end one: its controller stops its workers and exits; what it held is gone')
    .action((name: string) => end(name));
  return sessions;
}
