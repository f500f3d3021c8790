/**
 * Starts a named session's controller so that it outlives this process, whatever ends it: a
 * notebook kernel's restart ends the kernel's process group and every process descended from the
 * kernel, and a terminal's Ctrl-C signals its foreground group. So the controller is started by a
 * shell of its own session (setsid, Node's `detached`) that leaves it running in the background
 * and exits at once: the controller is then nobody's child here and in no group of ours. Its
 * stdout and stderr go to the session's log: the caller's may close long before it ends.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ControllerLaunch } from '../protocol/launch.js';
import { controllerEnv, controllerExecArgv, controllerScript } from './controller-command.js';

/** `$1` is the log; the rest is the command, started in the background; its pid is printed. */
const DETACH = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!';

/** Starts the controller detached, logging to `log`; resolves with its pid. */
export function startDetachedController(launch: ControllerLaunch, log: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const shell = spawn('/bin/sh', ['-c', DETACH, 'sh', log, process.execPath, ...controllerExecArgv(), controllerScript], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: controllerEnv(launch),
    });
    let out = '';
    let err = '';
    shell.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    shell.stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
    shell.once('error', (error) => reject(new Error(`could not start the session's controller: ${error.message}`)));
    shell.once('close', (code) => {
      const pid = Number(out.trim());
      if (code === 0 && Number.isInteger(pid) && pid > 0) resolve(pid);
      else reject(new Error(`could not start the session's controller: ${err.trim() || `its shell exited with code ${code}`}`));
    });
  });
}

/** The end of a session's log, to say why its controller did not come up. */
export function logTail(log: string, bytes = 2000): string {
  try {
    const text = readFileSync(log, 'utf8');
    return text.length > bytes ? `…${text.slice(-bytes)}` : text;
  } catch {
    return '';
  }
}
