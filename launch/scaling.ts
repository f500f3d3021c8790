/**
 * How many jobs a launcher wants, and what it does to get there. Pure decisions, no Slurm:
 * - scale(n) fixes the number; adapt({ min, max }) turns outstanding work into one: a job per
 *   `cores` jobs outstanding, within [min, max].
 * - Up at once, but never more than `maxPending` jobs waiting in Slurm's queue at a time.
 * - Down: pending jobs are cancelled first, then servers that are still starting, then serving ones
 *   are drained (never cancelled), the least busy first. adapt() goes down only after the work has
 *   stayed below the jobs for `scaleDownDelayMs`, so a pause between two bursts of work does not
 *   release jobs it would submit again a moment later.
 */
import type { JobPhase } from './slurm-jobs.js';

export type Target = { kind: 'fixed'; jobs: number } | { kind: 'adapt'; min: number; max: number };

export interface JobView {
  id: string;
  phase: Exclude<JobPhase, 'ended'>;
  /** Jobs running on its server now. */
  inflight: number;
  submittedAt: number;
}

export interface ScalingInput {
  target: Target;
  jobs: JobView[];
  /** Jobs queued at the controller or running on a worker. */
  work: number;
  cores: number;
  maxPending: number;
  now: number;
  /** Since when adapt() has wanted fewer jobs than it has (undefined: it has not). */
  belowSince?: number;
  scaleDownDelayMs: number;
}

export interface ScalingPlan {
  /** How many jobs it would have (the target now). */
  wanted: number;
  submit: number;
  cancel: string[];
  drain: string[];
  /** Carry into the next call's `belowSince`. */
  belowSince?: number;
}

export function wantedJobs(target: Target, work: number, cores: number): number {
  if (target.kind === 'fixed') return target.jobs;
  return Math.min(target.max, Math.max(target.min, Math.ceil(work / cores)));
}

export function planScaling(input: ScalingInput): ScalingPlan {
  const wanted = wantedJobs(input.target, input.work, input.cores);
  const active = input.jobs.filter((job) => job.phase !== 'draining');
  const pending = active.filter((job) => job.phase === 'pending').length;
  if (wanted >= active.length) {
    const submit = Math.max(0, Math.min(wanted - active.length, input.maxPending - pending));
    return { wanted, submit, cancel: [], drain: [] };
  }
  const belowSince = input.belowSince ?? input.now;
  if (input.target.kind === 'adapt' && input.now - belowSince < input.scaleDownDelayMs) return { wanted, submit: 0, cancel: [], drain: [], belowSince };
  let excess = active.length - wanted;
  const cancel: string[] = [];
  const drain: string[] = [];
  const newestFirst = (a: JobView, b: JobView) => b.submittedAt - a.submittedAt;
  for (const job of [...active.filter((j) => j.phase === 'pending').sort(newestFirst), ...active.filter((j) => j.phase === 'starting').sort(newestFirst)]) {
    if (excess === 0) break;
    cancel.push(job.id);
    excess--;
  }
  for (const job of active.filter((j) => j.phase === 'serving').sort((a, b) => a.inflight - b.inflight || newestFirst(a, b))) {
    if (excess === 0) break;
    drain.push(job.id);
    excess--;
  }
  return { wanted, submit: 0, cancel, drain };
}
