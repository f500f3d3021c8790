/**
 * A cluster's jobs: submitted with `sbatch --parsable`, kept in its state file, followed with
 * squeue, drained (`scancel --batch --signal=USR1`: the server finishes its running jobs and
 * gives back its queued ones) or cancelled. Says in words why a job is not serving: pending past a
 * timeout (with squeue's reason), running without its server reaching the controller, or ended
 * before it did (with the end of its log).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ENDED_STATES, type SlurmCommands } from './slurm-commands.js';
import { scriptFile, writeState, type JobRecord, type SlurmState } from './slurm-state.js';

/** A job's phase as the launcher sees it. */
export type JobPhase = 'pending' | 'starting' | 'serving' | 'draining' | 'ended';

export interface TrackedJob extends JobRecord {
  reason?: string;
  node?: string;
  /** When it was first seen running, and whether its server ever reached the controller. */
  runningSince?: number;
  served?: boolean;
}

export interface JobProblem {
  job: string;
  kind: 'pending' | 'unreachable' | 'failed';
  message: string;
}

const REASONS: Record<string, string> = {
  Resources: 'the resources it asks for are in use; it starts when they are free',
  Priority: 'jobs of higher priority go first',
  PartitionTimeLimit: "its wall-time is over the partition's limit",
  PartitionNodeLimit: 'it asks for more nodes than the partition allows',
  PartitionDown: 'its partition is down',
  PartitionInactive: 'its partition is inactive',
  ReqNodeNotAvail: 'no node it may run on is available (down, drained or reserved)',
  BadConstraints: 'no node has what it asks for (features, cores or memory together)',
  Dependency: 'it waits for another job',
  BeginTime: 'its start time is in the future',
  JobHeldUser: 'it is held (scontrol release to let it run)',
  JobHeldAdmin: 'an administrator holds it',
  QOSMaxJobsPerUserLimit: "your QOS's limit on running jobs is reached",
  AssocMaxJobsLimit: "your account's limit on running jobs is reached",
  AssocGrpCpuLimit: "your account's CPU limit is reached",
  Licenses: 'it waits for licenses',
};

export function explainReason(reason: string): string {
  const known = REASONS[reason] ?? (/^QOS|^Assoc/.test(reason) ? 'a limit of your account or QOS is reached' : undefined);
  return known ? `${reason}: ${known}` : reason;
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** A server's JSON log line as a person reads it: `warn: message key=value ...`; other lines as they are. */
export function readable(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const { level, time: _time, role: _role, pid: _pid, msg, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const fields = Object.entries(rest).map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
    return [`${LEVELS[level as number] ?? 'log'}: ${String(msg ?? '')}`, ...fields].join(' ');
  } catch {
    return line;
  }
}

export class SlurmJobs {
  readonly jobs = new Map<string, TrackedJob>();
  /** Jobs that ended before their server ever reached the controller, in a row. */
  failuresInARow = 0;

  constructor(
    private readonly slurm: SlurmCommands,
    readonly folder: string,
    readonly state: SlurmState,
  ) {
    for (const record of state.jobs) this.jobs.set(record.id, { ...record });
  }

  /** Submits `n` jobs one by one; returns their ids. */
  async submit(n: number): Promise<string[]> {
    const ids: string[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const id = await this.slurm.sbatch(scriptFile(this.folder));
        ids.push(id);
        this.jobs.set(id, { id, submittedAt: Date.now(), state: 'PENDING' });
      }
    } finally {
      this.save();
    }
    return ids;
  }

  /** Reads squeue: each job's state, reason and node; a job it no longer lists has ended. */
  async refresh(now = Date.now()): Promise<void> {
    if (this.live().length === 0) return; // nothing to ask squeue about
    const seen = new Map((await this.slurm.jobsNamed(this.state.name)).map((job) => [job.id, job]));
    let changed = false;
    for (const job of this.jobs.values()) {
      if (job.endedAt !== undefined) continue;
      const info = seen.get(job.id);
      const state = info?.state ?? 'GONE';
      if (state !== job.state) changed = true;
      job.state = state;
      job.reason = info?.reason;
      job.node = info?.nodes || job.node;
      if (state === 'RUNNING') job.runningSince ??= now;
      if (ENDED_STATES.has(state) || state === 'GONE') {
        job.endedAt = now;
        if (!job.served && job.cancelledAt === undefined && job.drainedAt === undefined) this.failuresInARow++;
      }
    }
    if (changed) this.save();
  }

  /** The launcher saw this job's server in session with the controller. */
  serving(id: string): void {
    const job = this.jobs.get(id);
    if (!job || job.served) return;
    job.served = true;
    this.failuresInARow = 0;
  }

  phase(job: TrackedJob): JobPhase {
    if (job.endedAt !== undefined) return 'ended';
    if (job.drainedAt !== undefined || job.cancelledAt !== undefined) return 'draining';
    if (job.served) return 'serving';
    return job.runningSince === undefined ? 'pending' : 'starting';
  }

  live(): TrackedJob[] {
    return [...this.jobs.values()].filter((job) => job.endedAt === undefined);
  }

  /** Tells these jobs' servers to drain; each ends once its running jobs are done (or its drain time is over). */
  async drain(ids: string[], now = Date.now()): Promise<void> {
    await this.slurm.scancel(ids, 'USR1');
    for (const id of ids) this.jobs.get(id)!.drainedAt = now;
    this.save();
  }

  async cancel(ids: string[], now = Date.now()): Promise<void> {
    await this.slurm.scancel(ids);
    for (const id of ids) this.jobs.get(id)!.cancelledAt = now;
    this.save();
  }

  logFile(id: string): string {
    return path.join(this.state.logDir, `${this.state.name}-${id}.log`);
  }

  /** The last lines of a job's log, or a note that it has none (yet). */
  logTail(id: string, lines = 12): string {
    const file = this.logFile(id);
    if (!existsSync(file)) return `(no log at ${file} yet)`;
    const text = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines);
    return `${file}:\n${text.map((line) => `  ${readable(line)}`).join('\n')}`;
  }

  /** What keeps jobs from serving, in words: pending too long, running without reaching the controller, ended before it did. */
  problems(options: { pendingTimeoutMs: number; startTimeoutMs: number }, now = Date.now()): JobProblem[] {
    const problems: JobProblem[] = [];
    for (const job of this.jobs.values()) {
      if (job.served) continue;
      const phase = this.phase(job);
      if (phase === 'pending' && now - job.submittedAt > options.pendingTimeoutMs) {
        const seconds = Math.round((now - job.submittedAt) / 1000);
        problems.push({ job: job.id, kind: 'pending', message: `Slurm job ${job.id} has been pending for ${seconds} s (${explainReason(job.reason ?? 'unknown reason')})` });
      } else if (phase === 'starting' && now - job.runningSince! > options.startTimeoutMs) {
        const seconds = Math.round((now - job.runningSince!) / 1000);
        problems.push({
          job: job.id,
          kind: 'unreachable',
          message: `Slurm job ${job.id} has run on ${job.node || 'its node'} for ${seconds} s, but its server has not reached the controller at ${this.state.connect}; its log ${this.logTail(job.id)}`,
        });
      } else if (phase === 'ended' && job.drainedAt === undefined && job.cancelledAt === undefined) {
        problems.push({
          job: job.id,
          kind: 'failed',
          message: `Slurm job ${job.id} ended (${job.state}) before its server reached the controller at ${this.state.connect}; its log ${this.logTail(job.id)}`,
        });
      }
    }
    return problems;
  }

  save(): void {
    this.state.jobs = [...this.jobs.values()].map(({ id, submittedAt, drainedAt, cancelledAt, endedAt, state }) => ({ id, submittedAt, drainedAt, cancelledAt, endedAt, state }));
    writeState(this.folder, this.state);
  }
}
