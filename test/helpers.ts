/** Real processes for tests: compute servers started through the CLI, and waiting on events. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ICodeCell, INotebookContent } from '@jupyterlab/nbformat';
import type { ScatterGather } from '../caller/index.js';
import { runningPid, waitUntilGone } from '../cli/pidfile.js';
import { descendants } from '../kernel/process-tree.js';

export const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface RunningServer {
  proc: ChildProcess;
  /** The first bound endpoint, as printed by the server. */
  endpoint: string;
  log: string[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `tsgather server` with the given flags; resolves once it is ready (bound servers print their endpoint). */
export async function startServer(args: string[], { waitForEndpoint = true } = {}): Promise<RunningServer> {
  const proc = spawn(process.execPath, [cli, 'server', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  proc.stderr!.setEncoding('utf8').on('data', (text: string) => log.push(text));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = once(proc, 'exit');
    proc.kill(signal);
    await gone;
  };
  if (!waitForEndpoint) return { proc, endpoint: '', log, stop };
  const endpoint = await listeningEndpoint(proc, (code) => `server exited with ${code} before listening: ${log.join('')}`);
  return { proc, endpoint, log, stop };
}

/** The endpoint a starting `tsgather server` prints (`listening on …`), or a rejection saying `why` it exited first. */
export function listeningEndpoint(proc: ChildProcess, why: (code: number | null) => string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      const match = /listening on (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    proc.once('exit', (code) => reject(new Error(why(code))));
  });
}

/** Resolves with the first event of this kind that passes the filter. */
export function nextEvent(sg: ScatterGather, kind: string, filter: (detail: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const listener = (event: { kind: string; detail: Record<string, unknown> }) => {
      if (event.kind === kind && filter(event.detail)) {
        sg.off('event', listener);
        resolve(event.detail);
      }
    };
    sg.on('event', listener);
  });
}

/** True while a process with this pid is running (a zombie awaiting its reaper counts as gone). */
export { isAlive as alive } from '../kernel/process-tree.js';

/** Live descendants of `root` whose command line names `script` (e.g. 'server/worker.js'). */
export function descendantsRunning(script: string, root = process.pid): number[] {
  return descendants(root).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(script);
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** For conditions nothing announces (another process's exit): checks until true or the time is up. */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export const histogramSource = (size: number, { distribution = 'normal', loc = 1, scale = 1, bins = 10 } = {}) => {
  if (distribution !== 'normal') throw new Error(`unknown distribution ${distribution}`);
  const xs = Array.from({ length: size }, () => loc + scale * Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random()));
  const min = Math.min(...xs);
  const max = Math.max(...xs);
  const counts = new Array<number>(bins).fill(0);
  for (const x of xs) counts[Math.min(bins - 1, Math.floor(((x - min) / (max - min)) * bins))]!++;
  return { counts, min, max };
};

/** Resolves once the server's stderr (its log) matches, checked as each piece arrives. */
export function logMatches(server: RunningServer, pattern: RegExp): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (!pattern.test(server.log.join(''))) return;
      server.proc.stderr!.off('data', check);
      resolve();
    };
    server.proc.stderr!.on('data', check);
    check();
  });
}

/** An nbformat 4.5 notebook of code cells with these sources, not yet run. */
export function codeNotebook(...sources: string[]): INotebookContent {
  return {
    cells: sources.map((source, i): ICodeCell => ({ cell_type: 'code', id: `c${i}`, metadata: {}, source, outputs: [], execution_count: null })),
    metadata: {},
    nbformat: 4,
    nbformat_minor: 5,
  };
}

/**
 * Stops every server daemon still recorded in a pid file under `dir`: a test that failed before its
 * own `server stop` would otherwise leave the daemon, its workers and its spares running past the run.
 */
export async function stopDaemonsIn(dir: string): Promise<void> {
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.pid'))) {
    const pid = runningPid(join(dir, name));
    if (pid === undefined) continue;
    process.kill(pid, 'SIGTERM');
    if (!(await waitUntilGone(pid, 5_000))) process.kill(pid, 'SIGKILL');
  }
}
