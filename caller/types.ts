import { userStack } from './remote-stack.js';
import type { LinkSecurityOptions } from '../protocol/link-security.js';
import type { ClusterLauncher } from '../launch/launcher.js';
import type { Status } from '../protocol/status.js';
import type { ScopeLookup } from './definition-capture.js';
/** The public shapes of the caller's API. */

/** One job: positional arguments, and optionally keyword arguments passed as a last object. */
export type JobItem = [args: unknown[], kwargs?: Record<string, unknown>];

export interface JobResult<T = unknown> {
  id: number;
  ok: boolean;
  value?: T;
  error?: Error;
  /** The function's name, and which version of its definition ran (0 = preloaded by the server). */
  fn: string;
  version: number;
  /** 1 on the first try; more when the job was rerun after its worker died under it. Reruns the job is not to blame for (a refresh, a server that left or drained) are not counted. */
  attempts: number;
  worker: { server: string; host: string; id: number; pid: number };
  /** Epoch milliseconds, and the run time on the worker. Read when asked for (a getter): a spread or structuredClone leaves it out; toJSON() has it. */
  readonly timings: { queuedAt: number; dispatchedAt: number; startedAt: number; finishedAt: number; runMs: number; totalMs: number };
  /** What the job printed, if anything (also emitted as 'output' events as it arrives). */
  output?: string;
}

/** A part a job added with `{ stream: true }` yielded (the 'part' event). */
export interface JobPart {
  job: number;
  /** Its number, from 0 in the order yielded. A rerun (its worker died) yields again from 0. */
  n: number;
  value: unknown;
}

export interface JobOutput {
  job: number | null;
  worker: number;
  server: string;
  host: string;
  stream: 'stdout' | 'stderr';
  text: string;
}

/**
 * Counts of jobs. `sg.progress` and the 'progress' event count the session's jobs; a progress view
 * counts its own call's jobs (see Reporter).
 */
export interface Progress {
  done: number;
  failed: number;
  total: number;
  outstanding: number;
  /** Results per second: since the first job was added (the session), or since the call began (a view). */
  rate: number;
  /**
   * sg.progress only: partial results received from mapReduce calls with `onServers` (each stands for
   * the jobs one worker folded together), over the pool's life.
   */
  partials?: number;
}

/** The call a progress view is for. */
export interface WaitingCall {
  method: 'map' | 'mapResults' | 'mapReduce' | 'submit' | 'waitForResult' | 'results';
  /** map, mapResults, submit: the function its jobs run. */
  fn?: string;
  /** waitForResult: true when it waits for all the jobs added with addJob, false for the first results. */
  all?: boolean;
  /** The call as a person would write it, e.g. `map(nap)` or `waitForResult({ all: true })`. */
  label: string;
}

/**
 * How a progress display shows one waiting call: fed as its jobs' results arrive, and once when the
 * call returns or throws, with the final counts (and the error it threw).
 */
export interface ProgressView {
  update(progress: Progress): void;
  done(progress: Progress, error?: Error): void;
}

/**
 * How a front end shows what the pool does (spawnScatterGather's `reporter`), so that it need not
 * wrap the pool's methods. Without one, waits for many results draw a progress bar on a terminal.
 */
export interface Reporter {
  /**
   * A call begins to wait for results: map, mapResults, submit, waitForResult, or an iteration of
   * results(). The view counts that call's jobs only: map's and mapResults' items, submit's one job;
   * for waitForResult and results(), the results of jobs added with addJob that the call returns
   * (those already there, those arriving) and the jobs still out — for waitForResult without `all`,
   * the first results only (a total of 1 while it waits). Concurrent calls get a view each, except
   * a one-result call (submit, waitForResult without `all`) while another view is open.
   */
  progress?(initial: Progress, call: WaitingCall): ProgressView;
  /** What status() resolves to: the status itself, or a value that also shows it (a table in a notebook). */
  status?(status: Status): Status;
}

export interface WaitOptions {
  /** Wait until no job added with addJob is outstanding (default: until at least one result is there). */
  all?: boolean;
  /** Give up after this many milliseconds and return what has arrived. */
  timeout?: number;
  /** Stop waiting once aborted: the wait rejects with the signal's reason and takes nothing. */
  signal?: AbortSignal;
}

export interface SpawnOptions extends LinkSecurityOptions {
  /**
   * The directory that a definition's `import()` and `require()` resolve from (relative paths and
   * packages), and `sync()` paths are relative to. Default: the main script's directory, or the
   * working directory when there is none; the kernel gives the notebook's directory.
   */
  base?: string;
  /** Workers of the embedded local server (default: one per core). */
  workers?: number;
  /** V8 heap limit (MB) of each embedded worker: a job that allocates without bound then kills only its worker. */
  workerHeapMb?: number;
  /** Set false to start no embedded server when no URLs are given (servers then dial in to `listen`). */
  embedded?: boolean;
  /** Addresses where compute servers may dial in, e.g. 'tcp://0.0.0.0:5556'. */
  listen?: string | string[];
  /** Reruns of a job whose worker died while running it (default 1). */
  retries?: number;
  heartbeatMs?: number;
  /** A server silent for this long is declared lost and its jobs requeued (default 5000). */
  heartbeatTimeoutMs?: number;
  /** How long spawnScatterGather waits for servers and workers (default 15000). */
  connectTimeoutMs?: number;
  /** Write job output to this process's stdout/stderr when nobody listens for 'output' (default true). */
  echo?: boolean;
  /** While map, mapResults or waitForResult({ all: true }) waits, draw a progress bar of its jobs on stdout when it is a terminal (default true). */
  progress?: boolean;
  /** How waits, and status(), are shown by a front end (the Jupyter kernel gives one); see Reporter. */
  reporter?: Reporter;
  /** pino level of the controller child and the embedded server's JSON logs on stderr (default: $TSGATHER_LOG_LEVEL or 'warn'). */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Default per-job timeout (ms, from when the job starts running); a job past it has its worker killed and reforked. Default: none. */
  timeoutMs?: number;
  /** Reruns of a job that ran past its timeout (default 0: it is reported as a JobTimeoutError). */
  timeoutRetries?: number;
  /** Memory ceiling (MB of resident memory) of each embedded worker: one over it is recycled between jobs. */
  workerMaxRssMb?: number;
  /**
   * Embedded worker processes kept started and waiting, so that `command('refresh')`, a crash or a
   * timeout gets a fresh worker in milliseconds rather than a Node start-up (default: one per
   * worker, each an idle process of about 53 MB resident; 0 for none).
   */
  spareWorkers?: number;
  /**
   * Most jobs outstanding (added, no result yet) at once; addJob past it throws a QueueFullError,
   * addJobAsync waits for room. Default: 2,000,000 or the heap limit / 2 KB, whichever is smaller.
   */
  maxQueued?: number;
  /** This notebook's share of shared servers' workers while other sessions have work there, against their weights (default 1). */
  weight?: number;
  /** Jobs asking for labels fail with an UnplaceableError after this long without a connected server carrying them (default: they wait). */
  placementTimeoutMs?: number;
  /**
   * Compute servers started by a cluster manager, which dial in: `cluster: slurm({ jobs: 4, cores: 8,
   * walltime: '2:00:00' })` (see docs/slurm.md). The controller then listens where the launcher says,
   * with keys made for it, and starts no embedded server unless `embedded: true`. Several launchers
   * (a list) start servers of several kinds; each is then scaled by itself.
   */
  cluster?: ClusterLauncher | ClusterLauncher[];
  /**
   * A named session: its controller outlives this process (a kernel restart, a script's end), and
   * a later spawnScatterGather({ session }) of the same name attaches to it and gets what it holds.
   * See docs/sessions.md.
   */
  session?: string;
  /** With session: fail with a SessionNotFoundError when no live session has that name, rather than start one. */
  attachOnly?: boolean;
  /** With session: a detached session with no job queued or running ends after this long (ms; default 3,600,000: an hour). */
  sessionIdleMs?: number;
  /** With session: most MB of results a detached session holds for the next caller; past it, no more jobs are dispatched until a caller attaches (default 1024). */
  sessionHoldMb?: number;
}

/** Per-call options of addJob, addJobAsync, submit, map and mapResults. */
export interface JobOptions {
  /** This call's jobs' timeout (ms, from when each starts running); overrides the spawn option. 0 = none. */
  timeoutMs?: number;
  /** Run only on servers carrying every one of these labels (`tsgather server --label gpu`). */
  labels?: string[];
  /** With labels: fail with an UnplaceableError after this long without a connected server carrying them (overrides the spawn option; default: wait). */
  placementTimeoutMs?: number;
  /**
   * Stop waiting once aborted (addJobAsync, submit, map, mapResults): the call rejects with the
   * signal's reason and queues nothing more of its list. Jobs already queued run; addJobAsync's
   * results come as usual, those of submit, map and mapResults are dropped. addJob ignores it.
   */
  signal?: AbortSignal;
  /**
   * The jobs' functions yield parts (async generators): each part is emitted as a 'part' event as
   * it comes (under the stream window's backpressure), and each job's result is its number of parts.
   */
  stream?: boolean;
}

/** Options of mapReduce: a job call's, and how to reduce on the servers. */
export interface MapReduceOptions<A = unknown> extends JobOptions {
  /**
   * Fold on the workers first (a tree reduction): each worker folds the values of the jobs it runs
   * with the reducer, starting from a copy of `initial` (so `initial` must be an identity: 0, [], a
   * zero array), and sends its accumulator now and then as one partial result; the caller folds the
   * partials with `combine`. Results cross the links once per partial, not once per job.
   */
  onServers?: boolean;
  /** onServers: folds two accumulators (default: the reducer itself, right when accumulator and value are of one kind, as for a sum). */
  combine?: (accumulator: A, partial: A, index: number) => A;
  /** onServers: a worker sends its partial at least this often (ms, default 1000), which bounds what a lost worker costs to rerun. */
  foldFlushMs?: number;
  /** onServers: values the reducer uses by name, shipped with it (as define's `with`). */
  with?: Record<string, unknown>;
}

/** Options of define. */
export interface DefineOptions {
  /** Ship the definition only to servers carrying every one of these labels; its jobs then run only there. */
  labels?: string[];
  /**
   * Values the function uses by name, shipped with it by value: data (as superjson carries it),
   * functions (as source, with the names they use in turn), and `imported(specifier, ...path)`
   * for what a module exports. A free name of the function that is neither a global of the
   * workers nor given here (nor found by `scope`) is refused by define, naming it and its line.
   */
  with?: Record<string, unknown>;
  /**
   * Where a free name that `with` does not give is looked up: `{ value }` when it is bound there.
   * The tsgather kernel passes the notebook's cell scope (see docs/definitions.md).
   */
  scope?: ScopeLookup;
}

/**
 * A job's error, as thrown on the worker: name and message; `stack` has the user's frames (see
 * remote-stack.ts), `remoteStack` the worker's whole stack.
 */
export class RemoteError extends Error {
  readonly remoteStack?: string;
  readonly job: number;

  constructor(remote: { name: string; message: string; stack?: string }, job: number) {
    super(remote.message);
    this.name = remote.name;
    this.job = job;
    this.remoteStack = remote.stack;
    if (remote.stack) this.stack = userStack(remote.stack);
  }
}

/**
 * addJob would hold more than maxQueued jobs (without a result, or with one not yet taken). From
 * addJob nothing was queued. From addJobAsync, `queued` holds the ids it did queue before it gave
 * up (their results come as usual): it gives up only when no room can come, with no job in flight
 * and maxQueued held by results nobody has taken.
 */
export class QueueFullError extends Error {
  override name = 'QueueFullError';

  constructor(
    readonly limit: number,
    readonly outstanding: number,
    readonly untaken: number,
    readonly adding: number,
    /** Ids this call queued before it gave up (addJobAsync): their results come as usual. */
    readonly queued: number[] = [],
  ) {
    const held = `${outstanding} job(s) are outstanding and ${untaken} result(s) not yet taken, and maxQueued is ${limit}`;
    super(
      queued.length === 0
        ? `addJob of ${adding} job(s) refused: ${held}; nothing was queued. ` +
            (outstanding === 0 ? 'Take results with poll(), waitForResult() or results() to make room' : 'Take results as they come, or use await addJobAsync(...), which waits for room')
        : `addJobAsync queued ${queued.length} of ${queued.length + adding} job(s) (ids in error.queued; their results come as usual) and gave up on the other ${adding}: ` +
            `${held}, and no job is in flight, so no room can come until results are taken with poll(), waitForResult() or results()`,
    );
  }
}

export class ControllerExitedError extends Error {
  override name = 'ControllerExitedError';

  constructor(
    readonly code: number | null,
    readonly signal: string | null,
    readonly lostJobs: number,
  ) {
    super(`the scatter/gather controller process exited (${signal ? `signal ${signal}` : `code ${code}`}) with ${lostJobs} job(s) without results; spawn a new one with spawnScatterGather()`);
  }
}
