/** `tsgather server stop` and `tsgather server status`: act on the server a pid file names. */
import { Command } from 'commander';
import { seconds } from './arguments.js';
import { EXIT, fail } from './exit-codes.js';
import { readFileSync } from 'node:fs';
import type { ServerStatusSnapshot } from '../protocol/index.js';
import { DEFAULT_PIDFILE, readPid, runningPid, statusFileOf, waitUntilGone } from './pidfile.js';

export function serverStopCommand(): Command {
  return new Command('stop')
    .description(`stop the server a pid file names (SIGTERM), waiting until it is gone; exit 3 if none was running`)
    .option('--pidfile <file>', 'the pid file the server was started with', DEFAULT_PIDFILE)
    .option('--timeout <seconds>', 'how long to wait for it to exit', seconds, 30)
    .action(async (opts: { pidfile: string; timeout: number }) => {
      const pid = runningPid(opts.pidfile);
      if (pid === undefined) return fail(notRunning(opts.pidfile), EXIT.notRunning);
      process.kill(pid, 'SIGTERM');
      if (!(await waitUntilGone(pid, opts.timeout * 1000))) return fail(`server pid ${pid} is still running ${opts.timeout} s after SIGTERM`);
      process.stdout.write(`stopped server pid ${pid}\n`);
    });
}

export function serverStatusCommand(): Command {
  return new Command('status')
    .description('show the server a pid file names (its sessions and their shares of the workers); exit 0 if it is running, 3 if not (as LSB init scripts)')
    .option('--pidfile <file>', 'the pid file the server was started with', DEFAULT_PIDFILE)
    .action((opts: { pidfile: string }) => {
      const pid = runningPid(opts.pidfile);
      if (pid === undefined) {
        process.stdout.write(`${notRunning(opts.pidfile)}\n`);
        process.exitCode = EXIT.notRunning;
        return;
      }
      process.stdout.write(`running: pid ${pid} (pid file ${opts.pidfile})\n`);
      const snapshot = readSnapshot(statusFileOf(opts.pidfile), pid);
      if (snapshot) process.stdout.write(describeSnapshot(snapshot));
    });
}

/** The status the server last wrote, if it is this very process's. */
function readSnapshot(path: string, pid: number): ServerStatusSnapshot | undefined {
  try {
    const snapshot = JSON.parse(readFileSync(path, 'utf8')) as ServerStatusSnapshot;
    return snapshot.pid === pid ? snapshot : undefined;
  } catch {
    return undefined;
  }
}

function describeSnapshot({ server, workers, labels, sessions }: ServerStatusSnapshot): string {
  const lines = [`server ${server}: ${workers} worker(s)${labels.length > 0 ? `, labels ${labels.join(', ')}` : ''}`, `sessions: ${sessions.length}`];
  for (const { controller, weight, share, busyMs } of sessions) {
    lines.push(`  ${controller}  weight ${weight}  share ${(share * 100).toFixed(0)}%  busy ${(busyMs / 1000).toFixed(1)} s`);
  }
  return `${lines.join('\n')}\n`;
}

function notRunning(pidfile: string): string {
  const pid = readPid(pidfile);
  return pid === undefined ? `not running (no pid in ${pidfile})` : `not running (stale pid ${pid} in ${pidfile})`;
}
