/**
 * Slurm's own commands, run without a shell (sbatch, squeue, scancel, scontrol, sinfo), and what
 * they print read into plain records. A missing command is a SlurmUnavailableError that says so;
 * a command that fails is a SlurmCommandError with what it printed.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { walltimeSeconds } from './slurm-options.js';

export class SlurmUnavailableError extends Error {
  override name = 'SlurmUnavailableError';
}

export class SlurmCommandError extends Error {
  override name = 'SlurmCommandError';

  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly code: number | null,
  ) {
    super(`\`${command}\` failed${code === null ? '' : ` (exit ${code})`}: ${stderr.trim() || 'no message'}`);
  }
}

/** A job as squeue shows it. */
export interface SlurmJob {
  id: string;
  /** PENDING, RUNNING, COMPLETING, COMPLETED, CANCELLED, FAILED, TIMEOUT... */
  state: string;
  /** Why it pends (Resources, Priority, ReqNodeNotAvail...), or None. */
  reason: string;
  /** The node it runs on, when it runs. */
  nodes: string;
}

export interface SlurmPartition {
  name: string;
  isDefault: boolean;
  /** Seconds, or undefined for UNLIMITED. */
  maxTimeSeconds?: number;
  maxTime: string;
  state: string;
}

export interface SlurmNode {
  name: string;
  cpus: number;
  memoryMb: number;
  features: string[];
  state: string;
}

/** States after which a job runs no more. */
export const ENDED_STATES = new Set(['COMPLETED', 'CANCELLED', 'FAILED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE', 'OUT_OF_MEMORY', 'REVOKED', 'SPECIAL_EXIT']);

/** Where `program` is on the PATH of `env`, if anywhere. */
export function findOnPath(program: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export class SlurmCommands {
  constructor(readonly env: NodeJS.ProcessEnv) {}

  /** Throws a SlurmUnavailableError when Slurm's commands are not on the PATH. */
  requireSbatch(): void {
    if (findOnPath('sbatch', this.env)) return;
    throw new SlurmUnavailableError("no `sbatch` on the PATH: run this where Slurm's commands are (a login node), load them first (`module load slurm`), or add their folder to PATH");
  }

  run(program: string, args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(program, args, { env: this.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new SlurmUnavailableError(`no \`${program}\` on the PATH: Slurm's commands are needed here`));
        const code = typeof error.code === 'number' ? error.code : null;
        reject(new SlurmCommandError(`${program} ${args.join(' ')}`, stderr || error.message, code));
      });
    });
  }

  /** Submits a batch script file; returns the job id. */
  async sbatch(script: string, ...args: string[]): Promise<string> {
    const out = await this.run('sbatch', ['--parsable', ...args, script]);
    const id = out.trim().split(';')[0]!;
    if (!/^\d+$/.test(id)) throw new SlurmCommandError(`sbatch --parsable ${script}`, `unexpected output '${out.trim()}'`, 0);
    return id;
  }

  /** What `sbatch --test-only` says of a script: Slurm's verdict without submitting it. */
  testOnly(script: string): Promise<string> {
    return this.run('sbatch', ['--test-only', script]);
  }

  /** Every job with this name (pending, running, and those ended within Slurm's MinJobAge). */
  async jobsNamed(name: string): Promise<SlurmJob[]> {
    const out = await this.run('squeue', ['-h', '--states=all', '--name', name, '-o', '%i|%T|%r|%N']);
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [id = '', state = '', reason = '', nodes = ''] = line.split('|');
        return { id, state, reason, nodes };
      });
  }

  /** Cancels jobs; with a signal, only sends it (`--batch`: to the batch script alone, our server). */
  async scancel(ids: string[], signal?: string): Promise<void> {
    if (ids.length === 0) return;
    try {
      await this.run('scancel', signal ? ['--batch', `--signal=${signal}`, ...ids] : ids);
    } catch (error) {
      // A job that ended meanwhile is what was wanted.
      if (!(error instanceof SlurmCommandError && /already completing|completed|Invalid job id|is not running/i.test(error.stderr))) throw error;
    }
  }

  async partitions(): Promise<SlurmPartition[]> {
    const out = await this.run('scontrol', ['show', 'partition', '--oneliner']);
    return out
      .split('\n')
      .filter((line) => line.startsWith('PartitionName='))
      .map((line) => {
        const fields = new Map<string, string>();
        for (const match of line.matchAll(/(\w+)=(\S*)/g)) fields.set(match[1]!, match[2]!);
        const maxTime = fields.get('MaxTime') ?? 'UNLIMITED';
        return {
          name: fields.get('PartitionName')!,
          isDefault: fields.get('Default') === 'YES',
          maxTime,
          maxTimeSeconds: durationOrUndefined(maxTime),
          state: fields.get('State') ?? 'UP',
        };
      });
  }

  async nodes(partition: string): Promise<SlurmNode[]> {
    const out = await this.run('sinfo', ['-h', '-N', '-p', partition, '-o', '%N|%c|%m|%f|%t']);
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [name = '', cpus = '0', memory = '0', features = '', state = ''] = line.split('|');
        return { name, cpus: Number(cpus), memoryMb: Number(memory), features: features === '(null)' ? [] : features.split(','), state };
      });
  }
}

/** Seconds in a duration as scontrol prints it; undefined for UNLIMITED or what cannot be read. */
function durationOrUndefined(text: string): number | undefined {
  try {
    return walltimeSeconds(text);
  } catch {
    return undefined;
  }
}
