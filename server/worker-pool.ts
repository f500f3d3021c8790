/**
 * The server's worker processes: forks them, notices their deaths, reforks crashed ones, and
 * kills-and-reforks them all on refresh. Keeps spares (started, loaded, waiting for an id) so that
 * a worker that goes is replaced in milliseconds. Knows nothing about controllers.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { DownCause, SpareCounts, WorkerInfo } from '../protocol/index.js';
import { YOUNG_GENERATION_FLAGS } from '../runtime/v8-flags.js';
import { withMallocTunables } from '../runtime/malloc-tunables.js';

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
  /** A spare died while it waited (it is replaced, up to MAX_EARLY_DEATHS in a row); `stderr` is the end of what it wrote. */
  spareDied(pid: number, code: number | null, signal: string | null, stderr: string): void;
  /** The spares changed: one started, loaded, was promoted or went. */
  sparesChanged(counts: SpareCounts): void;
}

/**
 * How every worker process is started, named as ServerOptions and the embedded cluster's launch
 * name them, so that either can be passed as it is.
 */
export interface WorkerSpawnOptions {
  /** The server's name (`--name`): its workers name it in their errors (default: host-pid, as the server names itself). */
  name?: string;
  /** A module whose exports every worker preloads as job functions. */
  module?: string;
  /** V8 heap ceiling per worker: a job that allocates without bound kills only its worker, soon. */
  workerHeapMb?: number;
  /** Resident-memory ceiling per worker: over it, a worker is recycled between jobs. */
  workerMaxRssMb?: number;
  /**
   * Worker processes kept started and waiting, to take the place of workers that go (refresh, a
   * crash, a timeout, a recycle) without a Node start-up. Default: as many as there are workers;
   * 0 for none. Each costs an idle process (about 53 MB resident here, as much as an idle worker).
   * A spare imports `module` only once promoted.
   */
  spareWorkers?: number;
}

/**
 * Starts worker `w`, which connects to `endpoint`; with no `w`, a spare, which waits for its id on
 * stdin (see promote). Light on imports on purpose: the controller child calls it before loading
 * the rest of itself, so its workers boot while it does.
 */
export function spawnWorker(w: number | undefined, endpoint: string, options: WorkerSpawnOptions): ChildProcess {
  const heap = options.workerHeapMb ? [`--max-old-space-size=${options.workerHeapMb}`] : [];
  const env: NodeJS.ProcessEnv = {
    ...withMallocTunables(process.env),
    TSGATHER_WORKER_ENDPOINT: endpoint,
    ...(options.module ? { TSGATHER_MODULE: options.module } : {}),
    ...(options.name ? { TSGATHER_SERVER_NAME: options.name } : {}),
    ...(options.workerMaxRssMb ? { TSGATHER_WORKER_MAX_RSS_MB: String(options.workerMaxRssMb) } : {}),
  };
  if (!options.name) delete env.TSGATHER_SERVER_NAME; // not one inherited from elsewhere
  if (w === undefined) {
    delete env.TSGATHER_WORKER_ID;
    env.TSGATHER_SPARE_FD = String(SPARE_FD); // where it says it has loaded
  } else {
    env.TSGATHER_WORKER_ID = String(w);
    delete env.TSGATHER_SPARE_FD;
  }
  const stdio: StdioOptions = w === undefined ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'];
  return spawn(process.execPath, [...YOUNG_GENERATION_FLAGS, ...heap, workerScript], { stdio, env });
}

/** The extra pipe a spare writes one line to once it has loaded. */
const SPARE_FD = 3;

interface Spare {
  child: ChildProcess;
  /** It said so on its SPARE_FD pipe: promoting it costs no more than a connect. */
  loaded: boolean;
  /** Its exit listener while it waits, taken off when it is promoted. */
  onExit: () => void;
  /** Stops keeping its stderr, once fork()'s readers take over. */
  stopKeeping: () => void;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function reapedOf(child: ChildProcess): Promise<void> {
  return hasExited(child) ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Consecutive deaths before readiness after which the pool stops reforking (a broken --module, say). */
const MAX_EARLY_DEATHS = 5;
/**
 * Spares start this long after every worker is up: the jobs that follow a start or a refresh get
 * the cores first, rather than share them with a Node start-up per spare.
 */
const SPARE_DELAY_MS = 500;
/** The end of a waiting spare's stderr, kept to report if it dies. */
const SPARE_STDERR_KEPT = 1000;

export class WorkerPool {
  readonly workers = new Map<number, WorkerProcess>();
  private nextId = 1;
  private target: number;
  private earlyDeaths = 0;
  private readyWaiters: Array<() => void> = [];
  private readonly spares: Spare[] = [];
  /** Spares that died while waiting, since one last came up as a worker: past MAX_EARLY_DEATHS, no more are started. */
  private spareDeaths = 0;
  private spareTimer?: NodeJS.Timeout;
  private stopped = false;

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

  spareCounts(): SpareCounts {
    const ready = this.spares.filter((spare) => spare.loaded).length;
    return { ready, starting: this.spares.length - ready };
  }

  list(): WorkerInfo[] {
    return [...this.workers.values()].filter((w) => w.ready).map(({ w, pid }) => ({ w, pid }));
  }

  /** Grows or shrinks the pool to `size` workers. */
  resize(size: number): void {
    this.target = size;
    this.stopped = false;
    this.fill();
    const surplus = [...this.workers.values()].slice(size);
    for (const worker of surplus) this.end(worker, 'shutdown');
    const surplusSpares = this.spares.splice(this.spareTarget());
    for (const spare of surplusSpares) this.discard(spare);
    if (surplusSpares.length > 0) this.announceSpares();
    this.scheduleSpares();
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
    this.stopped = true;
    clearTimeout(this.spareTimer);
    this.spareTimer = undefined;
    for (const child of this.prestarted.splice(0)) child.kill('SIGKILL'); // never taken (the server did not get as far)
    const workers = [...this.workers.values()];
    const spares = this.spares.splice(0);
    const reaped = [...workers.map((worker) => worker.child), ...spares.map((spare) => spare.child)].map(reapedOf);
    for (const worker of workers) this.end(worker, cause);
    for (const spare of spares) this.discard(spare);
    if (spares.length > 0) this.announceSpares();
    return Promise.all(reaped).then(() => undefined);
  }

  markReady(w: number, pid: number, functions: string[]): void {
    const worker = this.workers.get(w);
    if (!worker || worker.pid !== pid || worker.ready) return;
    worker.ready = true;
    worker.functions = functions;
    this.earlyDeaths = 0;
    this.spareDeaths = 0;
    this.events.up(worker);
    this.wakeIfAllReady();
    this.scheduleSpares();
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
  /** Reforks one worker, as a refresh does (its jobs aboard are rerun elsewhere, uncharged). */
  refreshWorker(w: number): void {
    const worker = this.workers.get(w);
    if (worker) this.replace(worker, 'refresh', {});
  }

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

  private spareTarget(): number {
    return this.stopped ? 0 : Math.max(0, Math.floor(this.spawnOptions.spareWorkers ?? this.target));
  }

  private scheduleSpares(): void {
    if (this.spareTimer || !this.everyoneReady() || this.spares.length >= this.spareTarget()) return;
    this.spareTimer = setTimeout(() => {
      this.spareTimer = undefined;
      if (this.everyoneReady()) this.replenishSpares();
    }, SPARE_DELAY_MS);
    this.spareTimer.unref();
  }

  private replenishSpares(): void {
    const before = this.spares.length;
    while (this.spares.length < this.spareTarget() && this.spareDeaths < MAX_EARLY_DEATHS) {
      const child = spawnWorker(undefined, this.endpoint, this.spawnOptions);
      child.stdin!.on('error', () => {}); // EPIPE once it is gone
      // Its stdout waits in the pipe for fork()'s readers; stderr is kept meanwhile, in case it dies.
      let stderr = '';
      const keepStderr = (text: string) => (stderr = (stderr + text).slice(-SPARE_STDERR_KEPT));
      child.stderr!.setEncoding('utf8').on('data', keepStderr);
      const spare: Spare = {
        child,
        loaded: false,
        onExit: () => {
          const index = this.spares.indexOf(spare);
          if (index < 0) return;
          this.spares.splice(index, 1);
          this.spareDeaths++;
          this.events.spareDied(child.pid ?? -1, child.exitCode, child.signalCode, stderr);
          this.announceSpares();
          this.scheduleSpares();
        },
        stopKeeping: () => child.stderr!.off('data', keepStderr),
      };
      child.once('exit', spare.onExit);
      (child.stdio[SPARE_FD] as Readable).once('data', () => {
        if (!this.spares.includes(spare)) return; // promoted or discarded meanwhile
        spare.loaded = true;
        this.announceSpares();
      });
      this.spares.push(spare);
    }
    if (this.spares.length > before) this.announceSpares();
  }

  /** The first live spare, told its id: it connects as worker `w`. What it wrote to stdout so far waits in the pipe for fork()'s readers. */
  private promote(w: number): ChildProcess | undefined {
    // Loaded ones first: one still starting connects only once it has loaded.
    const loadedFirst = [...this.spares.filter((spare) => spare.loaded), ...this.spares.filter((spare) => !spare.loaded)];
    for (const spare of loadedFirst) {
      this.spares.splice(this.spares.indexOf(spare), 1);
      spare.child.off('exit', spare.onExit);
      spare.stopKeeping();
      if (hasExited(spare.child)) continue;
      spare.child.stdin!.write(`${w}\n`);
      this.announceSpares();
      return spare.child;
    }
    return undefined;
  }

  private announceSpares(): void {
    this.events.sparesChanged(this.spareCounts());
  }

  private discard(spare: Spare): void {
    spare.child.off('exit', spare.onExit);
    spare.child.kill('SIGKILL');
  }

  private fork(): void {
    const w = this.nextId++;
    const child = this.prestarted.shift() ?? this.promote(w) ?? spawnWorker(w, this.endpoint, this.spawnOptions);
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
