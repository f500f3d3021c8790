/**
 * A named session's side of the caller link (spawnScatterGather's `session`): the controller
 * outlives its callers, so it keeps what a caller that goes would lose.
 *
 * - Every results message is numbered (`seq`) and held until the caller says it has taken every
 *   result in it ('taken': whole messages by seq, single results by job id). A caller killed
 *   outright loses what it had received and not taken; the next caller gets it again.
 * - It keeps the jobs handed over whose results nobody has taken (OwedRun), so that a caller
 *   attaching later learns what to expect: the held results, sent right after its attach reply,
 *   and the jobs still to finish.
 * - While no caller is attached, results are only held; events, output and replies are dropped.
 *   Held past `holdBytes`, no more jobs are dispatched until a caller attaches. (An attached caller
 *   has them too, and takes them when it will: pausing then could wait for ever on a caller that
 *   waits for all its results before it takes any.)
 * - A caller is attached until it detaches or its process is gone; a detached session with no
 *   job queued or running ends after `idleMs`.
 */
import { CallerRows } from '../protocol/rows.js';
import { isRunning } from '../protocol/ipc-endpoint.js';
import { writeSessionState, type SessionState } from '../protocol/session-dir.js';
import type { SessionLaunch } from '../protocol/launch.js';
import { ProtocolError, type ControllerToCaller, type Frames, type LinkMessage, type OwedRun, type SessionAttached, type SessionDetached, type TakenAck } from '../protocol/messages.js';
import { SpanList } from '../runtime/id-spans.js';

/** How often the attached caller's process is looked for: one killed outright says nothing. */
const CALLER_CHECK_MS = 1000;

/** Jobs of one 'jobs' message: a byte per job, 0 until its result is held, 1 then, 2 once taken. */
interface OwedJobs {
  first: number;
  count: number;
  /** Jobs not yet taken (SpanList sweeps the run out at 0). */
  open: number;
  fn: string;
  queuedAt: number;
  state: Uint8Array;
}

interface HeldResults {
  frames: Frames;
  bytes: number;
}

export interface CallerSessionHooks {
  /** Sends to the caller's socket. */
  post(message: Frames): void;
  /** A caller attached to a session that had paused dispatch: it may go on. */
  resume(): void;
  /** The session was idle for its time: end it. */
  idle(): void;
  log(level: 'info' | 'warn', message: string, detail?: Record<string, unknown>): void;
}

export class CallerSession {
  private attachedPid: number | undefined;
  private readonly owed = new SpanList<OwedJobs>();
  private readonly held = new Map<number, HeldResults>();
  private heldBytes = 0;
  private nextSeq = 1;
  /** Jobs handed over without a result yet (queued or running). */
  private running = 0;
  private nextId = 1;
  private readonly versions = new Map<string, number>();
  /** Dispatch paused (and said so in the log) since the held results passed holdBytes while detached. */
  private paused = false;
  private idleTimer?: NodeJS.Timeout;
  private readonly callerCheck: NodeJS.Timeout;

  constructor(
    private readonly launch: SessionLaunch,
    private readonly state: SessionState,
    private readonly hooks: CallerSessionHooks,
  ) {
    this.attachedPid = launch.callerPid;
    this.callerCheck = setInterval(() => {
      if (this.attachedPid !== undefined && !isRunning(this.attachedPid)) {
        hooks.log('info', 'the attached caller is gone; the session runs on detached', { pid: this.attachedPid });
        this.detach();
      }
    }, CALLER_CHECK_MS).unref();
    this.saveState();
  }

  get attached(): boolean {
    return this.attachedPid !== undefined;
  }

  /** Whether more jobs may be dispatched: not while detached with as many results held as holdBytes allows. */
  mayDispatch(): boolean {
    if (this.attached || this.heldBytes < this.launch.holdBytes) return true;
    if (!this.paused) {
      this.paused = true;
      this.hooks.log('warn', 'results held for the session reached sessionHoldMb: no more jobs are dispatched until a caller attaches', { heldMb: Math.round(this.heldBytes / 1048576) });
    }
    return false;
  }

  /** Everything the controller sends its caller comes here: results are numbered and held, the rest goes only to an attached caller. */
  send(message: LinkMessage<ControllerToCaller>): void {
    const head = JSON.parse(message[0] as string) as ControllerToCaller; // a small head, made by toCaller
    if (head.t !== 'results') {
      if (this.attached) this.hooks.post(message);
      return;
    }
    const seq = this.nextSeq++;
    const numbered: Frames = [JSON.stringify({ ...head, seq }), ...message.slice(1)];
    this.hold(seq, numbered);
    if (this.attached) this.hooks.post(numbered);
    else this.armIdle();
  }

  /** A caller's 'jobs' message, once the controller has queued it. */
  jobsAdded(first: number, count: number, fn: string): void {
    this.owed.push({ first, count, open: count, fn, queuedAt: Date.now(), state: new Uint8Array(count) });
    this.running += count;
    this.nextId = Math.max(this.nextId, first + count);
  }

  defined(name: string, version: number): void {
    this.versions.set(name, version);
  }

  /** The caller has taken these results: whole messages (no longer held), and single results of messages it took in part. */
  taken({ seqs, ids }: TakenAck): void {
    if (!Array.isArray(seqs) || !Array.isArray(ids)) throw new ProtocolError('taken needs lists of seqs and ids');
    for (const id of ids) {
      const run = typeof id === 'number' ? this.owed.find(id) : undefined;
      if (run) this.takeJob(run, id - run.first);
    }
    for (const seq of seqs) {
      const held = typeof seq === 'number' ? this.held.get(seq) : undefined;
      if (!held) continue;
      this.held.delete(seq);
      this.heldBytes -= held.bytes;
      this.forEachJob(held.frames, (run, index) => this.takeJob(run, index));
    }
  }

  /** A job's result is taken: it is owed to no later caller (a held message of it may still be replayed; the ledger of a later caller drops it). */
  private takeJob(run: OwedJobs, index: number): void {
    if (run.state[index] === 2) return;
    run.state[index] = 2;
    if (--run.open === 0) this.owed.closedOne();
  }

  /** Process `pid` attaches: returns what it must know; send the reply, then replay(). */
  attach(pid: number): Omit<SessionAttached, 'controller' | 'listen'> {
    this.attachedPid = pid;
    clearTimeout(this.idleTimer);
    this.saveState();
    return { owed: this.owedRuns(), held: this.heldCount(), versions: Object.fromEntries(this.versions), nextId: this.nextId };
  }

  /** The held results, in order, to a caller that just attached. */
  replay(): void {
    for (const seq of [...this.held.keys()].sort((a, b) => a - b)) this.hooks.post(this.held.get(seq)!.frames);
    if (this.paused) {
      this.paused = false;
      this.hooks.resume();
    }
  }

  summary(): SessionDetached {
    return { running: this.running, held: this.heldCount() };
  }

  /** The caller let go (or is gone): hold results for the next one. */
  detach(): void {
    this.attachedPid = undefined;
    this.saveState();
    this.armIdle();
  }

  close(): void {
    clearInterval(this.callerCheck);
    clearTimeout(this.idleTimer);
  }

  private hold(seq: number, frames: Frames): void {
    let bytes = 0;
    for (const frame of frames) bytes += typeof frame === 'string' ? Buffer.byteLength(frame) : frame.byteLength;
    this.forEachJob(frames, (run, index) => {
      if (run.state[index] !== 0) return;
      run.state[index] = 1;
      this.running--;
    });
    this.held.set(seq, { frames, bytes });
    this.heldBytes += bytes;
  }

  /** Calls `each` with the run and index of every job a results message answers. */
  private forEachJob(frames: Frames, each: (run: OwedJobs, index: number) => void): void {
    const rowsFrame = frames[1] as Uint8Array;
    const rows = new CallerRows(Buffer.from(rowsFrame.buffer, rowsFrame.byteOffset, rowsFrame.byteLength));
    for (let row = 0; row < rows.count; row++) {
      const id = rows.job(row);
      const run = this.owed.find(id);
      if (run) each(run, id - run.first);
    }
  }

  /** Results finished and not taken. */
  private heldCount(): number {
    let count = 0;
    for (const run of this.owed.all) {
      if (run.open === 0) continue;
      for (let i = 0; i < run.count; i++) if (run.state[i] === 1) count++;
    }
    return count;
  }

  /** Jobs not taken, as runs of consecutive ids. */
  private owedRuns(): OwedRun[] {
    const runs: OwedRun[] = [];
    for (const run of this.owed.all) {
      if (run.open === 0) continue;
      let start = -1;
      for (let i = 0; i <= run.count; i++) {
        const owed = i < run.count && run.state[i] !== 2;
        if (owed && start < 0) start = i;
        else if (!owed && start >= 0) {
          runs.push([run.first + start, i - start, run.fn, run.queuedAt]);
          start = -1;
        }
      }
    }
    return runs;
  }

  /** Detached with no job queued or running: the session ends after idleMs, unless a caller attaches first. */
  private armIdle(): void {
    if (this.attached || this.running > 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.hooks.idle(), this.launch.idleMs);
  }

  private saveState(): void {
    if (this.attachedPid === undefined) delete this.state.attachedPid;
    else this.state.attachedPid = this.attachedPid;
    try {
      writeSessionState(this.launch.dir, this.state);
    } catch (error) {
      this.hooks.log('warn', 'could not write the session state', { reason: (error as Error).message });
    }
  }
}
