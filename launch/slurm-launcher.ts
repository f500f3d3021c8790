/**
 * `slurm({...})`: spawnScatterGather's launcher for Slurm. Before the controller starts it checks
 * the options against Slurm and makes the servers' key pair; then it submits the jobs, and every
 * `pollMs` reads squeue and the pool's status, says why a job is not serving (once per job), and
 * submits, cancels or drains jobs to follow scale() or adapt(). Closing the pool cancels its jobs.
 */
import { EventEmitter } from 'node:events';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import type { Status } from '../protocol/status.js';
import { removeServerKey } from './slurm-state.js';
import { dialAddress, dialUrl, tcpUrl } from './dial-address.js';
import type { AdaptRange, ClusterLauncher, ControllerInfo, LaunchPlan, PoolView, ScaleRequest } from './launcher.js';
import { planScaling, type JobView, type Target } from './scaling.js';
import { openCluster, prepareCluster, resolveOptions, type PreparedCluster } from './slurm-cluster.js';
import type { JobProblem, SlurmJobs } from './slurm-jobs.js';
import type { ResolvedSlurmOptions, SlurmOptions } from './slurm-options.js';
import { readState } from './slurm-state.js';

/** Jobs that end before their server reaches the controller, in a row, before the launcher stops submitting. */
const MAX_FAILURES_IN_A_ROW = 3;

export interface SlurmJobStatus {
  id: string;
  /** Slurm's state (PENDING, RUNNING...) and, while pending, its reason. */
  state: string;
  reason?: string;
  node?: string;
  phase: string;
  /** The server's name at the controller, and the jobs running on it, once it is in session. */
  server?: string;
  inflight?: number;
}

export interface SlurmClusterStatus {
  name: string;
  connect: string;
  target: Target;
  jobs: SlurmJobStatus[];
  problems: string[];
  /** Why the launcher stopped submitting, if it did. */
  halted?: string;
}

export interface SlurmLauncherEvents {
  /** A job that is not serving, and why (said once per job and kind). */
  problem: [JobProblem];
}

export class SlurmLauncher extends EventEmitter<SlurmLauncherEvents> implements ClusterLauncher {
  readonly options: ResolvedSlurmOptions;
  private prepared?: PreparedCluster;
  private address?: string;
  private jobs?: SlurmJobs;
  private pool?: PoolView;
  private target: Target;
  private belowSince?: number;
  private timer?: NodeJS.Timeout;
  private ticking: Promise<void> = Promise.resolve();
  private lastStatus?: Status;
  private readonly reported = new Map<string, JobProblem>();
  private halted?: string;
  private closed = false;
  private readonly afterTick = new Set<() => void>();
  private readonly cancelAtExit = () => this.cancelNow();

  constructor(options: SlurmOptions = {}) {
    super();
    this.options = resolveOptions(options);
    this.target = { kind: 'fixed', jobs: this.options.jobs };
  }

  get name(): string {
    return this.options.name;
  }

  async prepare(): Promise<LaunchPlan> {
    if (this.closed || this.prepared) throw new Error('a Slurm launcher serves one pool: make a new one with slurm({ ... }) for another');
    this.address = await dialAddress(this.options);
    const fresh = !existsSync(this.options.folder);
    try {
      this.prepared = await prepareCluster(this.options, tcpUrl(this.address, this.options.port ?? 1));
    } catch (error) {
      // Nothing was submitted: leave no key (nor, for a new cluster, its folder) behind.
      if (fresh) rmSync(this.options.folder, { recursive: true, force: true });
      else removeServerKey(this.options.folder);
      throw error;
    }
    return { listen: tcpUrl(this.address, this.options.port ?? '*'), serverKeys: [this.prepared.serverPublicKey] };
  }

  async start(pool: PoolView, controller: ControllerInfo): Promise<void> {
    if (!this.prepared || !this.address) throw new Error('prepare() the launcher first');
    this.pool = pool;
    const earlier = readState(this.options.folder);
    const stale = earlier?.jobs.filter((job) => job.endedAt === undefined).map((job) => job.id) ?? [];
    if (stale.length > 0) await this.prepared.slurm.scancel(stale).catch(() => {}); // a crashed session's servers dial a controller that is gone
    this.jobs = openCluster(this.options, this.prepared, { connect: dialUrl(controller.listening, this.address), controllerKey: controller.publicKey }, false);
    process.once('exit', this.cancelAtExit);
    await this.tickNow();
    this.timer = setInterval(() => void this.tickNow().catch((error) => this.tickFailed(error as Error)), this.options.pollMs).unref();
    if (this.options.wait > 0) await this.waitForServers(this.options.wait);
  }

  async scale(request: ScaleRequest): Promise<void> {
    const jobs = typeof request === 'number' ? request : 'jobs' in request ? request.jobs : Math.ceil(request.workers / this.options.cores);
    if (!Number.isInteger(jobs) || jobs < 0) throw new TypeError(`scale() takes a whole number of jobs ≥ 0, or { workers } (got ${JSON.stringify(request)})`);
    this.target = { kind: 'fixed', jobs };
    this.resume();
    await this.tickNow();
  }

  adapt(range: AdaptRange = {}): void {
    const min = range.min ?? 0;
    const max = range.max ?? Number.POSITIVE_INFINITY;
    if (!Number.isInteger(min) || min < 0 || !(max >= min) || (max !== Number.POSITIVE_INFINITY && !Number.isInteger(max))) {
      throw new TypeError(`adapt() takes { min, max }: whole numbers of jobs with 0 ≤ min ≤ max (got ${JSON.stringify(range)})`);
    }
    this.target = { kind: 'adapt', min, max };
    this.resume();
  }

  /** Jobs as Slurm and the controller see them. */
  async status(): Promise<SlurmClusterStatus> {
    await this.tickNow();
    const jobs = this.requireJobs();
    const servers = new Map((this.lastStatus?.servers ?? []).filter((s) => s.id && s.connected).map((s) => [s.id!, s]));
    return {
      name: this.options.name,
      connect: jobs.state.connect,
      target: this.target,
      jobs: [...jobs.jobs.values()].map((job) => {
        const server = servers.get(this.serverName(job.id));
        return {
          id: job.id,
          state: job.state ?? 'UNKNOWN',
          reason: job.state === 'PENDING' ? job.reason : undefined,
          node: job.node,
          phase: jobs.phase(job),
          server: server?.id,
          inflight: server ? inflightOf(server.workers) : undefined,
        };
      }),
      problems: [...this.reported.values()].map((p) => p.message),
      halted: this.halted,
    };
  }

  /** Resolves once `n` servers are in session; rejects with the reasons when they cannot be (or after `timeoutMs`). */
  waitForServers(n: number, timeoutMs = this.options.pendingTimeoutMs + this.options.startTimeoutMs): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`${n} Slurm server(s) did not come up within ${timeoutMs} ms: ${this.describeJobs()}`)), timeoutMs);
      const check = () => {
        if (this.serving() >= n) return finish();
        const blocking = [...this.reported.values()].filter((p) => p.kind !== 'failed' || this.halted);
        if (this.halted || blocking.length > 0) finish(new Error([this.halted, ...blocking.map((p) => p.message)].filter(Boolean).join('\n')));
        else if (this.closed) finish(new Error('the Slurm launcher was closed'));
      };
      const finish = (error?: Error) => {
        clearTimeout(timer);
        this.afterTick.delete(check);
        if (error) reject(error);
        else resolve();
      };
      this.afterTick.add(check);
      check();
    });
  }

  /**
   * Cancels the jobs still pending and drains the running ones (their servers exit at once, as their
   * controller is gone), then cancels whatever still runs `drainSeconds` + 10 s later.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.ticking.catch(() => {});
    for (const check of this.afterTick) check();
    const jobs = this.jobs;
    const live = jobs?.live() ?? [];
    if (jobs && live.length > 0) {
      const pending = live.filter((job) => jobs.phase(job) === 'pending').map((job) => job.id);
      const running = live.filter((job) => jobs.phase(job) !== 'pending').map((job) => job.id);
      await jobs.cancel(pending);
      await jobs.drain(running);
      const late = setTimeout(
        () => {
          this.cancelNow();
          process.off('exit', this.cancelAtExit);
        },
        (this.options.drainSeconds + 10) * 1000,
      );
      late.unref();
    } else {
      process.off('exit', this.cancelAtExit);
    }
    removeServerKey(this.options.folder);
  }

  // ---- internals ----------------------------------------------------------------------------

  /** A new target: down-scaling waits afresh, and submitting resumes after jobs kept failing. */
  private resume(): void {
    this.belowSince = undefined;
    this.halted = undefined;
    if (this.jobs) this.jobs.failuresInARow = 0;
  }

  private serverName(id: string): string {
    return `${this.options.name}-${id}`;
  }

  private serving(): number {
    return this.jobs ? this.jobs.live().filter((job) => this.jobs!.phase(job) === 'serving').length : 0;
  }

  private requireJobs(): SlurmJobs {
    if (!this.jobs) throw new Error('the Slurm launcher has not started: pass it to spawnScatterGather({ cluster })');
    return this.jobs;
  }

  /** One round at a time: a scale() during a round waits for it, then runs its own. */
  private tickNow(): Promise<void> {
    const next = this.ticking.catch(() => {}).then(() => this.tick());
    this.ticking = next;
    return next;
  }

  private async tick(): Promise<void> {
    if (this.closed || !this.jobs || !this.pool) return;
    const jobs = this.jobs;
    const now = Date.now();
    await jobs.refresh(now);
    this.lastStatus = await this.pool.status();
    const inflight = new Map<string, number>();
    for (const server of this.lastStatus.servers) {
      if (!server.connected || !server.id?.startsWith(`${this.options.name}-`)) continue;
      const id = server.id.slice(this.options.name.length + 1);
      if (!jobs.jobs.has(id)) continue;
      jobs.serving(id);
      inflight.set(id, inflightOf(server.workers));
    }
    for (const problem of jobs.problems(this.options, now)) this.report(problem);
    if (!this.halted && jobs.failuresInARow >= MAX_FAILURES_IN_A_ROW) {
      this.halted = `${jobs.failuresInARow} Slurm jobs in a row ended before their server reached the controller: no more are submitted until scale() or adapt() is called again`;
      this.say(this.halted);
    }
    const views: JobView[] = jobs.live().map((job) => ({ id: job.id, phase: jobs.phase(job) as JobView['phase'], inflight: inflight.get(job.id) ?? 0, submittedAt: job.submittedAt }));
    const plan = planScaling({
      target: this.target,
      jobs: views,
      work: this.lastStatus.queued + this.lastStatus.inflight,
      cores: this.options.cores,
      maxPending: this.options.maxPending,
      now,
      belowSince: this.belowSince,
      scaleDownDelayMs: this.options.scaleDownDelayMs,
    });
    this.belowSince = plan.belowSince;
    if (plan.cancel.length > 0) await jobs.cancel(plan.cancel);
    if (plan.drain.length > 0) await jobs.drain(plan.drain);
    if (plan.submit > 0 && !this.halted) await jobs.submit(plan.submit);
    for (const check of [...this.afterTick]) check();
  }

  private tickFailed(error: Error): void {
    // The controller gone: close() follows (the caller calls it on the controller's exit) and says nothing more is needed.
    if (this.closed || error.name === 'ControllerExitedError') return;
    this.say(`squeue or the pool's status failed: ${error.message}`);
  }

  private report(problem: JobProblem): void {
    const key = `${problem.job}:${problem.kind}`;
    if (this.reported.has(key)) return;
    this.reported.set(key, problem);
    this.say(problem.message);
    this.emit('problem', problem);
  }

  private say(message: string): void {
    process.stderr.write(`tsgather slurm (${this.options.name}): ${message}\n`);
  }

  private describeJobs(): string {
    const jobs = this.jobs ? [...this.jobs.jobs.values()] : [];
    if (jobs.length === 0) return 'no job was submitted';
    return jobs.map((job) => `job ${job.id} ${job.state}${job.state === 'PENDING' && job.reason ? ` (${job.reason})` : ''}${job.node ? ` on ${job.node}` : ''}`).join(', ');
  }

  /** Cancels every job not seen ended, synchronously: at the caller's exit nothing asynchronous runs. */
  private cancelNow(): void {
    const live = this.jobs?.live().map((job) => job.id) ?? [];
    if (live.length === 0) return;
    try {
      execFileSync('scancel', live, { env: this.options.env, stdio: 'ignore', timeout: 10_000 });
    } catch {
      // the servers still go by themselves (--idle-exit)
    }
  }
}

function inflightOf(workers: Array<{ inflight: number }> | undefined): number {
  return (workers ?? []).reduce((sum, worker) => sum + worker.inflight, 0);
}

/** A Slurm launcher for spawnScatterGather's `cluster` option. */
export function slurm(options: SlurmOptions = {}): SlurmLauncher {
  return new SlurmLauncher(options);
}
