/**
 * Runs the IPython Parallel and Dask comparison scripts (bench/python/*.py) with Debian's Python,
 * installing their Debian packages first when run as root. Every process a script starts carries
 * a marker in its environment, so leftovers can be found and ended afterwards, by pid.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import type { SystemFigures } from './report/figures.js';
import { sleep } from './stats.js';
import { processesWithEnv } from './proc.js';

/** Debian's interpreter: the Debian packages are not visible to other Pythons (pyenv, venvs). */
const PYTHON = '/usr/bin/python3';
// numpy builds the payload workload's array; --no-install-recommends does not bring it along.
const PACKAGES = ['python3-ipyparallel', 'python3-distributed', 'python3-numpy'];
const SCRIPT_TIMEOUT_MS = 10 * 60_000;
const MARKER_VARIABLE = 'TSG_BENCH_MARKER';
/** The scripts live in the source tree, beside the compiled bench in dist/bench/ → ../../bench/python. */
const scriptsDir = fileURLToPath(new URL('../../bench/python/', import.meta.url));

export interface PythonConfig {
  workers: number;
  runs: number;
  tiny_jobs: number;
  latency_jobs: number;
  cpu_jobs: number;
  cpu_ms: number;
  /** Serial/parallel pairs: cheap, and Python's timings of pure CPU work are noisy here. */
  cpu_runs: number;
  payload_bytes: number;
  payload_runs: number;
  /** Which workloads to run: the usual ones, or only shared data (its own section). */
  workloads: 'usual' | 'shared';
  shared_jobs: number;
  shared_bytes: number;
  shared_runs: number;
}

function installed(pkg: string): boolean {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('install ok installed');
  } catch {
    return false;
  }
}

/** Installs the Debian packages if missing and possible; returns why not when they are unavailable. */
export function ensurePythonPackages(log: (line: string) => void): string | undefined {
  const missing = PACKAGES.filter((pkg) => !installed(pkg));
  if (missing.length === 0) return existsSync(PYTHON) ? undefined : `${PYTHON} not found`;
  if (process.getuid?.() !== 0) return `not installed (${missing.join(', ')}) and not running as root to apt-get install them`;
  log(`installing ${missing.join(' ')} with apt-get (as root)`);
  const apt = (args: string[]) => execFileSync('apt-get', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 10 * 60_000 });
  try {
    try {
      apt(['install', '-y', '-qq', '--no-install-recommends', ...missing]);
    } catch {
      apt(['update', '-qq']); // a fresh machine has no package lists yet
      apt(['install', '-y', '-qq', '--no-install-recommends', ...missing]);
    }
  } catch (error) {
    return `apt-get install ${missing.join(' ')} failed: ${(error as Error).message.split('\n')[0]}`;
  }
  return PACKAGES.every(installed) ? undefined : `apt-get did not install ${missing.join(', ')}`;
}

export interface PythonRun {
  figures: SystemFigures;
  versions: Record<string, string>;
  /** Processes found still running after the script ended, which were then killed. */
  leftovers: number;
  logPath: string;
}

/** Runs one comparison script and parses the JSON object it prints last. */
export async function runPythonBench(script: 'ipyparallel_bench.py' | 'dask_bench.py', config: PythonConfig): Promise<PythonRun> {
  const workDir = mkdtempSync(join(tmpdir(), 'tsg-bench-py-'));
  const logPath = join(tmpdir(), `tsg-bench-${script.replace('.py', '')}.log`);
  const marker = `tsg-bench-${randomUUID()}`;
  const child = spawn(PYTHON, [join(scriptsDir, script), JSON.stringify({ ...config, profile_dir: join(workDir, 'profile') })], {
    cwd: workDir,
    // PYTHONPATH: engines and workers unpickle the job functions by importing bench_common.
    env: { ...process.env, [MARKER_VARIABLE]: marker, PYTHONPATH: scriptsDir, PYTHONUNBUFFERED: '1', PYTHONWARNINGS: 'ignore' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so that whatever it forks can be ended with it
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const timer = setTimeout(() => child.kill('SIGKILL'), SCRIPT_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  writeFileSync(logPath, stderr);
  const leftovers = await endLeftovers(marker, child.pid!);
  rmSync(workDir, { recursive: true, force: true });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !last.startsWith('{')) throw new Error(`${script} exited with ${code}; see ${logPath}`);
  const printed = JSON.parse(last) as { figures: SystemFigures; versions: Record<string, string> };
  return { ...printed, leftovers, logPath };
}

/** Gives the script's processes a moment to finish their own shutdown, then kills any still there. */
async function endLeftovers(marker: string, groupLeader: number): Promise<number> {
  const marked = () => processesWithEnv(MARKER_VARIABLE, marker);
  for (let attempt = 0; attempt < 50 && marked().length > 0; attempt++) await sleep(100);
  const left = marked();
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  try {
    process.kill(-groupLeader, 'SIGKILL');
  } catch {
    // the group is empty: the usual case
  }
  return left.length;
}
