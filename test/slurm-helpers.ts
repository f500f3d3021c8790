/** What the Slurm tests share: the test cluster's shape, a pool on it, and checks of what is left behind. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobResult, ScatterGather, SlurmOptions } from '../caller/index.js';
import { waitUntil } from './helpers.js';
import type { SlurmSpec, TestSlurm } from './slurm.js';

/** Three nodes unlike each other: n2 alone has the feature 'big', n3 has one CPU and is the only node of 'short' (2 minutes at most). */
export const CLUSTER: SlurmSpec = {
  nodes: [
    { name: 'n1', cpus: 2, memoryMb: 2000 },
    { name: 'n2', cpus: 2, memoryMb: 2000, features: ['big'] },
    { name: 'n3', cpus: 1, memoryMb: 1000 },
  ],
  partitions: [
    { name: 'main', nodes: ['n1', 'n2', 'n3'], default: true },
    { name: 'short', nodes: ['n3'], maxMinutes: 2 },
  ],
};

export function stateDir(): string {
  return mkdtempSync(join(tmpdir(), 'tsg-slurm-state-'));
}

/** Launcher options for tests: this cluster's environment, servers dialling over the bridge, no spare workers, quick polls. */
export function testOptions(slurm: TestSlurm, dir: string, options: SlurmOptions = {}): SlurmOptions {
  return {
    env: slurm.env,
    interface: slurm.bridge,
    stateDir: dir,
    walltime: '10:00',
    pollMs: 250,
    idleExitSeconds: 30,
    drainSeconds: 5,
    ...options,
    serverArgs: ['--spare-workers', '0', ...(options.serverArgs ?? [])],
  };
}

/** A job that spins for `ms` (so it occupies its worker) and says where it ran. */
export async function defineSpin(sg: ScatterGather): Promise<void> {
  await sg.define('spin', (ms: number, i: number) => {
    const until = Date.now() + ms;
    while (Date.now() < until);
    return i;
  });
}

/** Every id has exactly one successful result, whose value is its item's index. */
export function assertExactlyOnce(ids: number[], results: JobResult[]): void {
  const byId = new Map<number, JobResult[]>();
  for (const r of results) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
  assert.deepEqual(
    ids.filter((id) => !byId.has(id)),
    [],
    'jobs without a result',
  );
  assert.deepEqual(
    [...byId].filter(([, rs]) => rs.length > 1).map(([id]) => id),
    [],
    'jobs with more than one result',
  );
  assert.deepEqual(
    results.filter((r) => !r.ok).map((r) => r.error?.message),
    [],
    'every job succeeded',
  );
  assert.equal(results.length, ids.length);
}

/** Waits until no process of the jobs is left: nothing in the nodes' namespaces but their slurmd, nothing naming `dir`. */
export async function assertNothingLeft(slurm: TestSlurm, dir: string): Promise<void> {
  await waitUntil(() => slurm.jobProcesses().length === 0 && slurm.processesMentioning(dir).length === 0, 30_000, 'the jobs’ processes to be gone');
}

/** The state Slurm gives a job (squeue, while it remembers it). */
export function jobState(slurm: TestSlurm, id: string): string {
  return slurm.command('squeue', '-h', '--states=all', '-j', id, '-o', '%T').trim();
}

/** The secret key in a key file, to look for where it must not be. */
export function secretOf(keyFile: string): string {
  return /^secret (\S+)$/m.exec(readFileSync(keyFile, 'utf8'))![1]!;
}

/** Like waitUntil, for a condition that must ask another process (the pool's status, squeue). */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}
