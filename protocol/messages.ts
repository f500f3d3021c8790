/**
 * Every message that crosses a process boundary, on every link:
 *   caller ⇄ controller   (ZeroMQ PAIR over ipc://)
 *   controller ⇄ server   (DEALER → ROUTER; either side may dial)
 *   server ⇄ worker       (worker DEALER → server ROUTER over ipc://)
 *
 * A message is a list of frames: a small JSON head `{ t, ... }` first, so that relays can route
 * on it without reading the rest. Job and result batches carry their values in bulk frames that
 * no hop between caller and worker parses (see JobRun, protocol/rows.ts and protocol/job-values.ts),
 * then the binary frames those values refer to.
 */

import type { ControllerEvent, SessionShare } from './status.js';
import type { CapturedName, ShippedModule } from './definition-captures.js';

/** Bumped on any change to a message's meaning; peers of another version are refused at the handshake. */
export const PROTOCOL_VERSION = 6;

export type Command = 'refresh' | 'die' | 'status';

export interface DefinitionSpec {
  name: string;
  version: number;
  source: string;
  /** Sent only to servers carrying every one of these labels; its jobs run only there. */
  labels?: string[];
  /** Names the source uses from the caller's side, shipped with it (see definition-captures.ts). */
  captures?: CapturedName[];
  /** The file URL of the directory its `import()` and `require()` resolve from first (the notebook's or script's). */
  base?: string;
  /** Local modules shipped with it (`sg.sync()`), found by their paths relative to `base`. */
  modules?: ShippedModule[];
}

export interface ServerInfo {
  id: string;
  host: string;
  pid: number;
  functions: string[];
  /** What its operator declared it has (`--label gpu --label site=lab2`): jobs asking for labels run only on servers carrying every one. */
  labels?: string[];
}

export interface WorkerInfo {
  w: number;
  pid: number;
}

/** A server's spare workers: loaded and waiting to be promoted (`ready`), and still starting. */
export interface SpareCounts {
  ready: number;
  starting: number;
}

/**
 * Why a worker went: asked to (refresh, die, shutdown), died on its own (crash), killed by its
 * server for running a job past its timeout (timeout), or retired between jobs for using more
 * memory than its ceiling (recycle).
 */
export type DownCause = 'refresh' | 'die' | 'crash' | 'shutdown' | 'timeout' | 'recycle';

/** Heads, by the link they travel on. */
export type ControllerToServer =
  /** `weight`: this session's share of a shared server's workers, against the others' (default 1). */
  | { t: 'hello'; v: number; controller: string; workers?: number; weight?: number }
  | { t: 'ping'; n: number }
  | { t: 'command'; id: number; cmd: 'refresh' | 'die' }
  | { t: 'bye' }
  | { t: 'refused'; reason: string }
  | { t: 'define'; w: number }
  | { t: 'jobs'; w: number }
  /**
   * [head, text, ...binary frames]: a value pushed under `name` (sg.push), for every worker of the
   * server, present and future; the server keeps it for this session until dropped or the session ends.
   */
  | { t: 'put'; name: string; version: number; plain: boolean }
  | { t: 'drop'; name: string }
  /**
   * [head, text, ...binary frames]: part `part` of `parts` of an array scattered under `name`
   * (sg.scatter), for worker `w` alone; the server keeps it and gives it to the worker that
   * replaces `w` when `w` goes. (A 'drop' of the name drops the parts too.)
   */
  | { t: 'scatter'; name: string; version: number; plain: boolean; w: number; part: number; parts: number }
  /** sg.gather: each worker holding a part of version `version` of `name` sends it back; the server answers with one 'collected'. */
  | { t: 'collect'; id: number; name: string; version: number }
  /** The caller's credit for streaming job `job`, to the worker running it. */
  | { t: 'credit'; w: number; job: number; n: number };

export type ServerToController =
  | { t: 'join'; v: number; server: ServerInfo }
  /**
   * `size`: the workers this server will run for the controller (fewer than asked for when --max-workers caps it).
   * `maxFrame`: the largest frame it takes (--max-message-mb); a bigger one would cost the link its connection.
   * `shared`: other controllers are in session there too.
   */
  | { t: 'welcome'; v: number; server: ServerInfo; workers: WorkerInfo[]; size: number; maxFrame?: number; shared?: boolean }
  | { t: 'refused'; reason: string }
  /** `sessions`: every session on the server and its share of the workers lately (the asking one marked `you`). */
  | { t: 'pong'; n: number; sessions?: SessionShare[] }
  | { t: 'worker-up'; w: number; pid: number; functions: string[] }
  /** Sent after a welcome and on every change. */
  | ({ t: 'spares' } & SpareCounts)
  | { t: 'worker-down'; w: number; pid: number; cause: DownCause; code: number | null; signal: string | null; job?: number; limitMs?: number; rssMb?: number }
  /** [head, text]: output can be longer than a head may be (readHead's limit), so it travels in a frame of its own. */
  | { t: 'worker-output'; w: number; stream: 'stdout' | 'stderr' }
  | { t: 'command-done'; id: number; workers: WorkerInfo[] }
  | { t: 'error'; reason: string }
  | { t: 'server-bye'; reason: string }
  | { t: 'results'; w: number }
  | Extract<WorkerToServer, { t: 'parts' }>
  /** [head, ...per part: text, ...binary frames]: the parts of `name` this server's workers hold now, as ScatterPart. */
  | { t: 'collected'; id: number; parts: ScatterPart[] };

/** One part of a scattered array in a message: its index, whether plain, its frames (the text, then binary frames). */
export type ScatterPart = [index: number, plain: boolean, frames: number];

export type ControllerToCaller =
  | { t: 'ready'; controller: string; listen?: string }
  /** `seq`: in a session, this message's number, which the caller acknowledges ('taken') once it has taken every result in it. */
  | { t: 'results'; server: string; host: string; w: number; pid: number; seq?: number }
  /** [head, text], as worker-output. */
  | { t: 'output'; job: number | null; server: string; host: string; w: number; stream: 'stdout' | 'stderr' }
  | ({ t: 'event' } & ControllerEvent)
  /** [head, value]: the value as JSON, or an empty frame for none (a status of many servers is longer than a head may be). */
  | { t: 'reply'; id: number; ok: boolean; error?: string }
  /** A batch of parts of streaming job `job`, as its worker sent it (see PartsMessage). */
  | PartsHead;

export type CallerToController =
  /**
   * Jobs `first` to `first + count - 1`, all of function `fn`: [head, values, offsets, nbins, ...binary frames].
   * `values` and `offsets` as packValues makes them; `nbins` a uint32 per job (its binary frames), or empty when none has any.
   */
  /** `labels`: run only on servers carrying every one; `placementMs`: fail as unplaceable after this long with no such server. */
  /** `fold`: a mapReduce with `onServers`: each worker folds the values of the jobs it runs (see FoldTag). */
  | { t: 'jobs'; first: number; count: number; fn: string; timeoutMs?: number; labels?: string[]; placementMs?: number; stream?: boolean; fold?: FoldTag }
  /** The caller has taken parts up to `n` of streaming job `job`: its worker may run up to the stream window past it (see STREAM_WINDOW). */
  | { t: 'credit'; job: number; n: number }
  /** [head, spec]: the DefinitionSpec as JSON in a frame of its own, since a source may be far longer than a head may be. */
  | { t: 'define'; id: number }
  | { t: 'connect'; id: number; url: string }
  /** [head, text, ...binary frames]: a value for every worker, present and future, read by jobs as `shared[name]`. */
  | { t: 'put'; id: number; name: string; plain: boolean }
  | { t: 'drop'; id: number; name: string }
  /**
   * [head, ...per part: text, ...binary frames]: an array split in `parts.length` (the workers up),
   * part i for the i-th worker (by server, then w). A 'gather' replies [head, ScatterPart[] as JSON, ...their frames].
   */
  | { t: 'scatter'; id: number; name: string; parts: ScatterPart[] }
  | { t: 'gather'; id: number; name: string }
  | { t: 'command'; id: number; cmd: Command }
  /** Sessions: process `pid` attaches to a running session. The reply's value is a SessionAttached; the held results follow it. */
  | { t: 'attach'; id: number; pid: number }
  /** Sessions: the caller lets go; the session runs on and holds results for the next one. The reply's value is a SessionDetached. */
  | { t: 'detach'; id: number }
  /** Sessions: [head, TakenAck as JSON]: results the caller has taken, which are not kept for a later caller. */
  | { t: 'taken' };

/** Results a session's caller has taken: whole results messages by `seq`, and single results by job id (of messages partly taken). */
export interface TakenAck {
  seqs: number[];
  ids: number[];
}

/**
 * Sessions: jobs whose results no caller has taken yet, as runs of consecutive ids:
 * [first id, count, function, queued at (epoch ms, when the controller got them)].
 */
export type OwedRun = [first: number, count: number, fn: string, queuedAt: number];

/** The reply to 'attach': what a caller taking over a running session needs to know. */
export interface SessionAttached {
  controller: string;
  listen?: string;
  /** Every job handed over by earlier callers whose result has not been taken: held ones (sent right after this reply) and those still to finish. */
  owed: OwedRun[];
  /** Results held for a caller (finished, not taken), sent right after this reply. */
  held: number;
  /** The latest version of each definition, so that a redefinition numbers on. */
  versions: Record<string, number>;
  /** The first job id no caller has used. */
  nextId: number;
}

/** The reply to 'detach': what the session holds as the caller lets go. */
export interface SessionDetached {
  /** Jobs queued or running. */
  running: number;
  /** Results finished and not taken (held for the next caller, with those still to come). */
  held: number;
}

export type WorkerToServer =
  | { t: 'ready'; w: number; pid: number; functions: string[] }
  | { t: 'results'; w: number }
  /** A job with a timeout starts (the server arms a timer) and ends (disarms it). Untimed jobs send neither. */
  | { t: 'running'; w: number; job: number; timeoutMs: number }
  | { t: 'ran'; w: number; job: number }
  /** Between jobs, over its memory ceiling, with every result sent: kill and refork me. */
  | { t: 'recycle'; w: number; rssMb: number }
  /** Told to drain: its queued jobs dropped, the one it ran finished, every result sent. */
  | { t: 'drained'; w: number }
  /** Told to refresh, and running no other controller's job now: kill and refork me. */
  | { t: 'retire'; w: number }
  /** A batch of parts a streaming job yielded (see PartsMessage), relayed to its controller unread. */
  | (PartsHead & { w: number })
  /** Milliseconds of jobs run since the last report, per controller tag: the server's record of each session's share. */
  | { t: 'usage'; w: number; ms: Array<[controller: string, ms: number]> }
  /** [head, text, ...binary frames]: the worker's value of the name collect `id` asked for; `missing` when it has none. */
  | { t: 'collected'; w: number; id: number; plain: boolean; missing?: boolean };

/**
 * What a worker gets, as [controller, head, ...]: a controller's 'define' and 'jobs' passed on by
 * its server; 'forget' when that controller's session on the server ended (close() or die on a
 * shared server): its queued jobs and its definitions go; and 'drain' (its controller frame empty)
 * when the server is about to stop: every queued job goes, the running one finishes; and 'refresh'
 * from a controller on a shared server: the worker asks to be reforked once it runs no other
 * controller's job; and 'session' with a controller's weight, for the share of the worker its jobs get.
 */
export type ServerToWorker =
  | Extract<ControllerToServer, { t: 'define' | 'jobs' | 'drop' | 'credit' }>
  /** `part` of `parts` when the value is one worker's part of a scattered array (sg.scatter). */
  | (Extract<ControllerToServer, { t: 'put' }> & { part?: number; parts?: number })
  /** sg.gather: send back the value of `name` (as 'collected' with this `id`). */
  | { t: 'collect'; id: number; name: string }
  | { t: 'forget' }
  | { t: 'drain' }
  | { t: 'refresh' }
  | { t: 'session'; weight: number };

export type Head = ControllerToServer | ServerToController | ControllerToCaller | CallerToController | WorkerToServer | ServerToWorker;

/**
 * A 'jobs' message to a worker, controller → server → worker, is [head, runs, ...per run: values,
 * then, when the run has binary frames, a uint32 count per job and the frames]. `runs` is a JSON
 * list of JobRun; each run is jobs of consecutive ids, its values a slice of what the caller packed.
 */
export type JobRun = [first: number, count: number, fn: string, timeoutMs: number, binaryFrames: number, stream?: 0 | 1, fold?: FoldTag];

/**
 * The jobs of a mapReduce with `onServers`: their worker folds each value into its accumulator for
 * `key` (the reducer is the definition named `key`, the accumulator starts as a copy of the value
 * pushed as `shared[key]`) and sends the accumulator as one partial result, covering the jobs it
 * folded, when no job of the call has come for a moment, every `flushMs`, before it goes, and before
 * a failure of one of them. The reducer's index argument is the job's id minus `base`.
 */
export type FoldTag = [key: string, base: number, flushMs: number];

/**
 * Parts of a streaming job (sg.stream), worker → server → controller → caller, in batches:
 * [head, values, kinds, ...binary frames]. The batch holds parts `n` to `n + count - 1` (numbered
 * from 0 in the order yielded). `values` is the parts' encoded texts as one JSON array; `kinds` is
 * left out when every part is plain JSON without binary frames, else a uint32 per part: its number
 * of binary frames times 2, plus 1 when it is plain. The binary frames follow, part by part
 * (encodeParts and decodeParts, stream-parts.ts).
 */
export interface PartsHead {
  t: 'parts';
  job: number;
  n: number;
  count: number;
}

/** A parts batch's bytes as worker and caller both count them for credit: its values frame and binary frames. */
export function partsBytes(values: Uint8Array, bins: readonly Uint8Array[]): number {
  let bytes = values.byteLength;
  for (const bin of bins) bytes += bin.byteLength;
  return bytes;
}

/**
 * The stream window: a worker runs at most STREAM_WINDOW parts, and STREAM_WINDOW_BYTES bytes of
 * batches (their values and binary frames; a batch past it goes alone), past the caller's credit.
 * The caller credits what it has taken once half of either is taken since its last credit.
 */
export const STREAM_WINDOW = 4096;
export const STREAM_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * A credit of this many parts says the reader stopped early: the worker ends the generator (its
 * `finally` blocks run) at its next yield, sends nothing more, and the job's result is the parts sent.
 */
export const STREAM_STOPPED = 2 ** 31;

/**
 * A results message, worker → server → controller → caller: [head, rows, values, output, ...binary frames].
 * `rows` is a binary frame of numbers, a fixed number per result (see rows.ts); `values` is a JSON
 * array of encoded values and `output` a JSON array of OutputRow; both, and the binary frames,
 * travel untouched.
 *
 * A job's value is its item, `[args]` or `[args, kwargs]`, so a plain one parses to an array and
 * a superjson tree to an object: job values need no plain column.
 */
/** Console output written while a job ran: [job id, stream, text]. */
export type OutputRow = [number, 'stdout' | 'stderr', string];

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** A message's frames; `head` is always frame 0. */
export type Frames = Array<Buffer | Uint8Array | string>;

/** Heads stay small: relays parse every one. What may be longer travels in a frame of its own. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Longest function name: names travel in heads (every jobs message, worker-up, join). */
export const MAX_FUNCTION_NAME = 256;
/**
 * Most bytes (as JSON) of the function names a --module preloads: the list travels in the heads
 * that announce a worker or a server. A welcome lists every worker too, about 25 bytes each: half a
 * head leaves room for 1,300 of them, more than --max-workers allows on a 320-core machine.
 */
export const MAX_PRELOADED_NAMES_BYTES = 32 * 1024;

/** Any head on any link. Prefer the helper of the link the message travels on (toServer, toCaller, ...): they check the head's type. */
export function frames(head: Head, ...rest: Frames): Frames {
  return [JSON.stringify(head), ...rest];
}

declare const linkHeads: unique symbol;

/**
 * A message for one link, whose head is one of `H`. Only that link's helper below (or `relayed`)
 * makes one, so a link's send that takes `LinkMessage<ControllerToServer>`, say, refuses at compile
 * time a head meant for another link. At run time it is plain Frames.
 */
export type LinkMessage<H extends Head> = Frames & { readonly [linkHeads]: H };

/** Controller → server. */
export function toServer(head: ControllerToServer, ...rest: Frames): LinkMessage<ControllerToServer> {
  return [JSON.stringify(head), ...rest] as LinkMessage<ControllerToServer>;
}

/** Server → controller. */
export function toController(head: ServerToController, ...rest: Frames): LinkMessage<ServerToController> {
  return [JSON.stringify(head), ...rest] as LinkMessage<ServerToController>;
}

/** Controller → caller. */
export function toCaller(head: ControllerToCaller, ...rest: Frames): LinkMessage<ControllerToCaller> {
  return [JSON.stringify(head), ...rest] as LinkMessage<ControllerToCaller>;
}

/** Caller → controller. */
export function fromCaller(head: CallerToController, ...rest: Frames): LinkMessage<CallerToController> {
  return [JSON.stringify(head), ...rest] as LinkMessage<CallerToController>;
}

/** Worker → server. */
export function fromWorker(head: WorkerToServer, ...rest: Frames): LinkMessage<WorkerToServer> {
  return [JSON.stringify(head), ...rest] as LinkMessage<WorkerToServer>;
}

/**
 * A message a relay passes on without parsing more than its head, as is: the relay vouches that its
 * head is one of `H` (a worker's 'results', say, is also a ServerToController head).
 */
/** A message from a server to one of its workers, on behalf of controller `tag`. */
export function toWorker(w: number, tag: string, head: ServerToWorker, ...rest: Frames): Frames {
  return [`w${w}`, tag, ...frames(head, ...rest)];
}

export function relayed<H extends Head>(message: Frames): LinkMessage<H> {
  return message as LinkMessage<H>;
}

/** Parses and shape-checks frame 0. Throws ProtocolError for anything that is not a head. */
export function readHead<H extends Head = Head>(frame: Buffer | undefined): H {
  if (!frame) throw new ProtocolError('empty message');
  if (frame.length > MAX_HEAD_BYTES) throw new ProtocolError(`message head of ${frame.length} bytes is too large`);
  let head: unknown;
  try {
    head = JSON.parse(frame.toString('utf8'));
  } catch {
    throw new ProtocolError('message head is not JSON');
  }
  if (typeof head !== 'object' || head === null || typeof (head as { t?: unknown }).t !== 'string') {
    throw new ProtocolError('message head has no type');
  }
  return head as H;
}

/** A frame of UTF-8 text (output, say); a missing one is malformed. */
export function textFrame(frame: Buffer | undefined, what: string): string {
  if (!frame) throw new ProtocolError(`${what} frame is missing`);
  return frame.toString('utf8');
}

export function readJson<T>(frame: Buffer | undefined, what: string): T {
  if (!frame) throw new ProtocolError(`${what} frame is missing`);
  try {
    return JSON.parse(frame.toString('utf8')) as T;
  } catch {
    throw new ProtocolError(`${what} frame is not JSON`);
  }
}

/** Joins already-encoded JSON texts into one JSON array text, without re-encoding any of them. */
export function joinJson(texts: string[]): string {
  return `[${texts.join(',')}]`;
}

export function requireNumber(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ProtocolError(`${what} must be a number`);
  return value;
}
