/** Test helpers for named sessions: a private sessions directory, scripts run as callers, gated jobs, and cleanup. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { descendants, isAlive } from '../kernel/process-tree.js';
import { listSessions } from '../protocol/session-dir.js';
import { waitUntil } from './helpers.js';

export const INDEX = fileURLToPath(new URL('../caller/index.js', import.meta.url));

/**
 * A job that waits until the file `gate` exists (a test opens the gate by writing it), then
 * returns `x * 2`; it leaves `<gate>.done-<x>` behind as it finishes, so a test can see it did.
 */
export const GATED = `async (gate, x) => {
  const fs = require('node:fs');
  while (!fs.existsSync(gate)) await new Promise((resolve) => setTimeout(resolve, 10));
  if (gate !== '/') fs.writeFileSync(gate + '.done-' + x, '');
  return x * 2;
}`;

/** A fresh private sessions directory for this test file, given to every caller it starts (and to this process). */
export function useSessionsDir(): string {
  const dir = mkdtempSync('/tmp/tsgs-'); // mode 0700
  process.env.TSGATHER_SESSIONS_DIR = dir;
  return dir;
}

/** Opens a gate of GATED jobs. */
export function openGate(gate: string): void {
  writeFileSync(gate, '');
}

/** Waits until GATED jobs with these `x` have finished behind `gate`. */
export function gatedDone(gate: string, xs: number[]): Promise<void> {
  return waitUntil(() => xs.every((x) => existsSync(`${gate}.done-${x}`)), 20_000, `jobs ${xs.join(', ')} behind ${gate} to finish`);
}

export interface Script {
  child: ChildProcess;
  /** The first line of stdout matching `pattern` (its first group parsed as JSON when there is one). */
  line(pattern: RegExp, timeoutMs?: number): Promise<unknown>;
  /** Resolves when the script has exited. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Runs `code` as an ES module in a node process of its own (a caller), with `env` added. */
export function startScript(code: string, env: NodeJS.ProcessEnv = {}, prefix: string[] = [], index = INDEX): Script {
  const { NODE_TEST_CONTEXT: _, ...plain } = { ...process.env, ...env };
  const child = spawn(...command(prefix, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(index)});\n${code}`]), { stdio: ['ignore', 'pipe', 'pipe'], env: plain });
  let stdout = '';
  let stderr = '';
  const waiting = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    for (const look of waiting) look();
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (exitCode, signal) => {
      for (const look of waiting) look();
      resolve({ code: exitCode, signal, stdout, stderr });
    }),
  );
  const line = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stdout: ${stdout.slice(-800)} stderr: ${stderr.slice(-1500)}`)), timeoutMs);
      const finish = (error?: Error, value?: unknown) => {
        clearTimeout(timer);
        waiting.delete(look);
        if (error) reject(error);
        else resolve(value);
      };
      const look = () => {
        const match = pattern.exec(stdout);
        if (match) return finish(undefined, match[1] === undefined ? match[0] : JSON.parse(match[1]));
        if (child.exitCode !== null || child.signalCode !== null)
          finish(new Error(`exited (${child.exitCode ?? child.signalCode}) with no line matching ${pattern}; stdout: ${stdout.slice(-800)} stderr: ${stderr.slice(-1500)}`));
      };
      waiting.add(look);
      look();
    });
  return { child, line, done };
}

function command(prefix: string[], args: string[]): [string, string[]] {
  return prefix.length > 0 ? [prefix[0]!, [...prefix.slice(1), process.execPath, ...args]] : [process.execPath, args];
}

/** The session's controller and every process under it (its workers). */
export function sessionProcesses(controllerPid: number): number[] {
  return [controllerPid, ...descendants(controllerPid)];
}

/** Waits until none of `pids` runs. */
export function allGone(pids: number[], what: string, timeoutMs = 15_000): Promise<void> {
  return waitUntil(() => !pids.some(isAlive), timeoutMs, what);
}

/** Kills what sessions in `dir` left running (a failed test's), then removes the directory. */
export function endSessionsIn(dir: string): void {
  process.env.TSGATHER_SESSIONS_DIR = dir;
  for (const session of listSessions()) {
    if (!session.alive || !session.state) continue;
    for (const pid of sessionProcesses(session.state.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
