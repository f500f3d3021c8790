/**
 * The server's worker processes: forks them, notices their deaths, reforks crashed ones, and
 * kills-and-reforks them all on refresh. Knows nothing about controllers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DownCause, WorkerInfo } from '../protocol/index.js';
import { YOUNG_GENERATION_FLAGS } from '../protocol/v8-flags.js';

const workerScript = fileURLToPath(new URL('./worker.js', import.meta.url));

export interface WorkerProcess {
  w: number;
  pid: number;
  child: ChildProcess;
  ready: boolean;
  functions: string[];
  /** Set when the pool itself ends the process, so its exit is not taken for a crash. */
  ending?: DownCause;
  /** Armed while a job with a timeout runs. */
  deadline?: { job: number; timer: NodeJS.Timeout };
}

/** What the pool knows about why a worker went, beyond the cause. */
export interface DownDetail {
  job?: number;
  limitMs?: number;
  rssMb?: number;
}

export interface PoolEvents {
  up(worker: WorkerProcess): void;
  down(worker: WorkerProcess, cause: DownCause, code: number | null, signal: string | null, detail?: DownDetail): void;
  output(worker: WorkerProcess, stream: 'stdout' | 'stderr', text: string): void;
  /** A worker died before it ever became ready, too many times in a row: reforking stops. */
  failing(reason: string): void;
}

/**
 * How every worker process is started, named as ServerOptions and the embedded cluster's launch
 * name them, so that either can be passed as it is.
 */
export interface WorkerSpawnOptions {
  /** A module whose exports every worker preloads as job functions. */
  module?: string;
  /** V8 heap ceiling per worker: a job that allocates without bound kills only its worker, soon. */
  workerHeapMb?: number;
  /** Resident-memory ceiling per worker: over it, a worker is recycled between jobs. */
  workerMaxRssMb?: number;
}

/**
 * Starts worker `w`, which connects to `endpoint`. Light on imports on purpose: the controller
 * child calls it before loading the rest of itself, so its workers boot while it does.
 */
export function spawnWorker(w: number, endpoint: string, options: WorkerSpawnOptions): ChildProcess {
  const heap = options.workerHeapMb ? [`--max-old-space-size=${options.workerHeapMb}`] : [];
  return spawn(process.execPath, [...YOUNG_GENERATION_FLAGS, ...heap, workerScript], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      ...process.env,
      TSGATHER_WORKER_ID: String(w),
      TSGATHER_WORKER_ENDPOINT: endpoint,
      ...(options.module ? { TSGATHER_MODULE: options.module } : {}),
      ...(options.workerMaxRssMb ? { TSGATHER_WORKER_MAX_RSS_MB: String(options.workerMaxRssMb) } : {}),
    },
  });
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Consecutive deaths before readiness after which the pool stops reforking (a broken --module, say). */
const MAX_EARLY_DEATHS = 5;

export class WorkerPool {
  readonly workers = new Map<number, WorkerProcess>();
  private nextId = 1;
  private target: number;
  private earlyDeaths = 0;
  private readyWaiters: Array<() => void> = [];

  constructor(
    size: number,
    private readonly endpoint: string,
    private readonly events: PoolEvents,
    private readonly spawnOptions: WorkerSpawnOptions = {},
    /** Workers 1, 2, ... already started with spawnWorker (same endpoint and options): taken before forking more. */
    private readonly prestarted: ChildProcess[] = [],
  ) {
    this.target = size;
  }

  get size(): number {
    return this.target;
  }

  list(): WorkerInfo[] {
    return [...this.workers.values()].filter((w) => w.ready).map(({ w, pid }) => ({ w, pid }));
  }

  /** Grows or shrinks the pool to `size` workers. */
  resize(size: number): void {
    this.target = size;
    this.fill();
    const surplus = [...this.workers.values()].slice(size);
    for (const worker of surplus) this.end(worker, 'shutdown');
  }

  /** Kills every worker at once and forks replacements; resolves when all replacements answer. */
  async refresh(): Promise<WorkerInfo[]> {
    for (const worker of [...this.workers.values()]) this.end(worker, 'refresh');
    this.earlyDeaths = 0;
    this.fill();
    await this.allReady();
    return this.list();
  }

  /** Stops every worker and forks none until resized; resolves when all of them are reaped. */
  stop(cause: DownCause): Promise<void> {
    this.target = 0;
    for (const child of this.prestarted.splice(0)) child.kill('SIGKILL'); // never taken (the server did not get as far)
    const workers = [...this.workers.values()];
    const reaped = workers.map((worker) => (hasExited(worker.child) ? Promise.resolve() : new Promise<void>((resolve) => worker.child.once('exit', () => resolve()))));
    for (const worker of workers) this.end(worker, cause);
    return Promise.all(reaped).then(() => undefined);
  }

  markReady(w: number, pid: number, functions: string[]): void {
    const worker = this.workers.get(w);
    if (!worker || worker.pid !== pid || worker.ready) return;
    worker.ready = true;
    worker.functions = functions;
    this.earlyDeaths = 0;
    this.events.up(worker);
    this.wakeIfAllReady();
  }

  /** A job with a timeout started on worker w: past the limit, the worker is killed and reforked. */
  jobStarted(w: number, job: number, timeoutMs: number): void {
    const worker = this.workers.get(w);
    if (!worker?.ready) return;
    this.jobEnded(w);
    const timer = setTimeout(() => this.replace(worker, 'timeout', { job, limitMs: timeoutMs }), timeoutMs);
    worker.deadline = { job, timer };
  }

  jobEnded(w: number): void {
    const worker = this.workers.get(w);
    if (worker) this.disarm(worker);
  }

  /** The worker sent all its results and asked to go: it grew past its memory ceiling. */
  recycle(w: number, rssMb: number): void {
    const worker = this.workers.get(w);
    if (worker) this.replace(worker, 'recycle', { rssMb });
  }

  /**
   * Ends one worker for a reason of the pool's own and forks its successor at once; the death is
   * reported once the process is gone, so its jobs are never rerun while it might still be running.
   */
  private replace(worker: WorkerProcess, cause: DownCause, detail: DownDetail): void {
    if (!this.detach(worker, cause)) return;
    const report = () => this.events.down(worker, cause, null, 'SIGKILL', detail);
    if (hasExited(worker.child)) report();
    else worker.child.once('exit', report);
    worker.child.kill('SIGKILL');
    this.fill();
  }

  allReady(): Promise<void> {
    if (this.everyoneReady()) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  private wakeIfAllReady(): void {
    if (this.everyoneReady()) for (const wake of this.readyWaiters.splice(0)) wake();
  }

  private everyoneReady(): boolean {
    return this.workers.size >= this.target && [...this.workers.values()].every((w) => w.ready);
  }

  private end(worker: WorkerProcess, cause: DownCause, detail?: DownDetail): void {
    if (!this.detach(worker, cause)) return;
    worker.child.kill('SIGKILL');
    this.events.down(worker, cause, null, 'SIGKILL', detail);
  }

  /** Takes a worker out of the pool for `cause`, once: false when it was already on its way out (and reported, or about to be). */
  private detach(worker: WorkerProcess, cause: DownCause): boolean {
    if (worker.ending) return false;
    worker.ending = cause;
    this.disarm(worker);
    this.workers.delete(worker.w);
    return true;
  }

  private disarm(worker: WorkerProcess): void {
    if (worker.deadline) clearTimeout(worker.deadline.timer);
    worker.deadline = undefined;
  }

  private fill(): void {
    while (this.workers.size < this.target) this.fork();
  }

  private fork(): void {
    const w = this.nextId++;
    const child = this.prestarted.shift() ?? spawnWorker(w, this.endpoint, this.spawnOptions);
    const worker: WorkerProcess = { w, pid: child.pid ?? -1, child, ready: false, functions: [] };
    this.workers.set(w, worker);
    child.stdout!.setEncoding('utf8').on('data', (text: string) => this.events.output(worker, 'stdout', text));
    child.stderr!.setEncoding('utf8').on('data', (text: string) => this.events.output(worker, 'stderr', text));
    child.stdin!.on('error', () => {}); // EPIPE once the worker is gone; its exit is reported below
    // A prestarted worker may have died before the pool took it: its 'exit' went unheard.
    if (hasExited(child)) queueMicrotask(() => this.exited(worker, child.exitCode, child.signalCode));
    else child.on('exit', (code, signal) => this.exited(worker, code, signal));
  }

  private exited(worker: WorkerProcess, code: number | null, signal: string | null): void {
    if (!this.detach(worker, 'crash')) return; // ended by us: reported there
    this.events.down(worker, 'crash', code, signal);
    if (!worker.ready && ++this.earlyDeaths >= MAX_EARLY_DEATHS) {
      this.target = this.workers.size;
      this.events.failing(`workers died ${MAX_EARLY_DEATHS} times in a row before becoming ready (last exit code ${code}, signal ${signal}); not reforking`);
      // Those still starting may yet come up (or die too): waiters hear once every one has.
      this.wakeIfAllReady();
      return;
    }
    this.fill();
  }
}
