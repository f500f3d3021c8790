/**
 * A worker process: the only place user code runs. It connects to its server's worker socket,
 * evaluates shipped definitions (kept per controller) and preloaded module functions, runs jobs
 * one at a time in arrival order, and sends results back in batches.
 */
import * as zmq from 'zeromq';
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
// The protocol's modules one by one rather than its index: the index also loads key handling and
// CURVE (node:crypto), which a worker never uses, and every worker start pays for what it loads.
import { decodeParsed, describeError, encodeValue, NO_FRAMES, SerializationError, type EncodedValue } from '../protocol/codec.js';
import { parseRun, readUint32s } from '../protocol/job-values.js';
import {
  frames,
  joinJson,
  ProtocolError,
  readHead,
  readJson,
  MAX_FUNCTION_NAME,
  MAX_PRELOADED_NAMES_BYTES,
  type ControllerToServer,
  type DefinitionSpec,
  type JobRun,
  type OutputRow,
  type WorkerToServer,
} from '../protocol/messages.js';
import { linkOptions, MAX_MESSAGE_BYTES, Outbox, receiveLoop } from '../protocol/transport.js';
import { Deque } from '../runtime/deque.js';
import { WorkerRowWriter } from '../protocol/rows.js';
import { OutputCapture } from './output-capture.js';

type JobFunction = (...args: unknown[]) => unknown;
interface Definition {
  fn: JobFunction;
  version: number;
}

/** Set at spawn, or, for a spare, when its server promotes it (see promotion()). */
let workerId = Number(process.env.TSGATHER_WORKER_ID ?? NaN);
const endpoint = process.env.TSGATHER_WORKER_ENDPOINT!;
const modulePath = process.env.TSGATHER_MODULE;
/** Memory ceiling: over it, between jobs, this worker asks its server to recycle it. */
const maxRssBytes = Number(process.env.TSGATHER_WORKER_MAX_RSS_MB ?? 0) * 1024 * 1024;
const RSS_CHECK_INTERVAL_MS = 10;

/** Results are sent when the queue runs dry, or at least this often while it does not: half the controller's 8 ms window, so about one message per top-up. */
const FLUSH_INTERVAL_MS = 4;
const FLUSH_MAX_RESULTS = 4096;
/** ...or once they hold this much text, so the values frame stays far below the links' frame limit. */
const FLUSH_MAX_TEXT = 64 * 1024 * 1024;

// Cells and definitions expect CommonJS `require` too; the worker is ESM.
(globalThis as Record<string, unknown>).require ??= createRequire(path.join(process.cwd(), 'noop.js'));

const preloaded = new Map<string, JobFunction>();
const definitionsByController = new Map<string, Map<string, Definition>>();

interface QueuedJob {
  controller: string;
  id: number;
  fn: string;
  /** The job's item as parsed: an array when it was plain JSON, else a superjson tree. */
  value: unknown;
  bins: Uint8Array[];
  timeoutMs: number;
}

/** Results for one controller, not yet sent. */
class ResultBatch {
  readonly rows = new WorkerRowWriter();
  values: string[] = [];
  bins: Uint8Array[] = [];
  out: OutputRow[] = [];

  get size(): number {
    return this.rows.count;
  }
}

// Started early by a controller child, a worker may be up before its server's socket is bound: retry the ipc connect quickly.
// Its routing id is set just before it connects: a spare learns its id only then.
const socket = new zmq.Dealer(linkOptions({ reconnectInterval: 5 }));
const outbox = new Outbox(socket, (error) => process.stderr.write(`worker ${workerId}: send failed: ${error.message}\n`));
const capture = new OutputCapture(scheduleOutputFlush);
/** A ring buffer: Array.prototype.shift moves the whole backing store when V8 cannot trim it in place (during incremental marking, say). */
const queue = new Deque<QueuedJob>(64);
const batches = new Map<string, ResultBatch>();
let running = false;
let lastFlush = performance.now();
let lastJobEnd = 0;
/** Results recorded and not yet flushed, over all controllers. */
let heldResults = 0;
/** Characters of result text held, over all controllers. */
let heldText = 0;
let current: QueuedJob | undefined;
let outputFlushScheduled = false;
let lastRssCheck = 0;
/** Set once this worker asked to be recycled: it starts no further job. */
let retiring = false;

/** Runs once the job yields (an await), so output of long async jobs streams; sync jobs' output goes with their result. */
function scheduleOutputFlush(): void {
  if (outputFlushScheduled) return;
  outputFlushScheduled = true;
  setImmediate(() => {
    outputFlushScheduled = false;
    if (current) takeOutput(current);
    flush();
  });
}

function batchFor(controller: string): ResultBatch {
  let batch = batches.get(controller);
  if (!batch) batches.set(controller, (batch = new ResultBatch()));
  return batch;
}

function takeOutput(job: QueuedJob): void {
  const taken = capture.take();
  if (taken.length === 0) return;
  const batch = batchFor(job.controller);
  for (const [stream, text] of taken) batch.out.push([job.id, stream, text]);
}

async function loadPreloadedModule(): Promise<void> {
  if (!modulePath) return;
  const mod = (await import(pathToFileURL(path.resolve(modulePath)).href)) as Record<string, unknown>;
  const exported = { ...(mod.default && typeof mod.default === 'object' ? mod.default : {}), ...mod };
  for (const [name, value] of Object.entries(exported)) {
    if (typeof value !== 'function') continue;
    // addJob refuses such a name, so the function could never be called.
    if (name.length > MAX_FUNCTION_NAME) throw new Error(`--module ${modulePath} exports a function named '${name.slice(0, 40)}…' (${name.length} characters); a function name is at most ${MAX_FUNCTION_NAME}`);
    preloaded.set(name, value as JobFunction);
  }
  const bytes = Buffer.byteLength(JSON.stringify([...preloaded.keys()]));
  if (bytes > MAX_PRELOADED_NAMES_BYTES) {
    throw new Error(`--module ${modulePath} exports ${preloaded.size} functions whose names take ${bytes} bytes; at most ${MAX_PRELOADED_NAMES_BYTES} fit in the messages that announce a worker. Export fewer, or spread them over modules for different servers`);
  }
}

/** Accepts arrow functions, function declarations/expressions, async ones, and method shorthand. */
export function compileDefinition(source: string): JobFunction {
  const attempts = [`(${source})`, `({${source}})`];
  for (const code of attempts) {
    let value: unknown;
    try {
      value = (0, eval)(code);
    } catch (error) {
      if (error instanceof SyntaxError) continue;
      throw error;
    }
    if (typeof value === 'function') return value as JobFunction;
    if (value && typeof value === 'object') {
      const only = Object.values(value);
      if (only.length === 1 && typeof only[0] === 'function') return only[0] as JobFunction;
    }
  }
  throw new TypeError('definition source does not evaluate to a function');
}

function handleDefine(controller: string, defs: DefinitionSpec[]): void {
  let table = definitionsByController.get(controller);
  if (!table) definitionsByController.set(controller, (table = new Map()));
  for (const def of defs) {
    try {
      table.set(def.name, { fn: compileDefinition(def.source), version: def.version });
    } catch (error) {
      const { name, message } = describeError(error);
      const fn: JobFunction = () => {
        throw Object.assign(new Error(`definition of '${def.name}' v${def.version} failed to compile here: ${name}: ${message}`), {
          name: 'DefinitionError',
        });
      };
      table.set(def.name, { fn, version: def.version });
    }
  }
}

function lookup(controller: string, name: string): Definition | undefined {
  const defined = definitionsByController.get(controller)?.get(name);
  if (defined) return defined;
  const fn = preloaded.get(name);
  return fn ? { fn, version: 0 } : undefined;
}

function unknownFunction(controller: string, name: string): Error {
  const known = [...(definitionsByController.get(controller)?.keys() ?? []), ...preloaded.keys()];
  const error = new Error(
    `no function named '${name}' on this worker; ${known.length ? `known: ${known.join(', ')}` : 'nothing is defined yet'} (use define() first)`,
  );
  error.name = 'UnknownFunctionError';
  return error;
}

function argumentsOf(job: QueuedJob): unknown[] {
  // A plain item arrives as the array it is; anything else as a superjson tree (an object).
  const item = decodeParsed(job.value, Array.isArray(job.value), job.bins);
  if (!Array.isArray(item) || !Array.isArray(item[0])) throw new TypeError(`job ${job.id} arrived without an args array`);
  const [args, kwargs] = item as [unknown[], Record<string, unknown> | undefined];
  const hasKwargs = kwargs !== undefined && kwargs !== null && Object.keys(kwargs).length > 0;
  return hasKwargs ? [...args, kwargs] : args;
}

function record(job: QueuedJob, ok: boolean, value: unknown, startedAt: number, t0: number, version: number): void {
  lastJobEnd = performance.now();
  const runMs = lastJobEnd - t0;
  let encoded;
  try {
    encoded = checkFrames(job, encodeValue(value, 'result'));
  } catch (error) {
    ok = false;
    encoded = encodeValue(describeError(error));
  }
  // A large result goes in a message of its own rather than past the frame limit with the others.
  if (heldText > 0 && heldText + encoded.text.length > FLUSH_MAX_TEXT) flush();
  const batch = batchFor(job.controller);
  batch.rows.add(job.id, ok, batch.bins.length, encoded.bins.length, startedAt, runMs, version, encoded.plain);
  heldResults++;
  heldText += encoded.text.length;
  batch.values.push(encoded.text);
  for (const bin of encoded.bins) batch.bins.push(bin);
  takeOutput(job);
}

/**
 * A frame over the links' limit would cost this worker its connection and the result with it: such
 * a result becomes a SerializationError instead. (UTF-8 takes at most 3 bytes a character.)
 */
function checkFrames(job: QueuedJob, encoded: EncodedValue): EncodedValue {
  let largest = encoded.text.length * 3 > MAX_MESSAGE_BYTES ? Buffer.byteLength(encoded.text) : 0;
  for (const bin of encoded.bins) largest = Math.max(largest, bin.byteLength);
  if (largest <= MAX_MESSAGE_BYTES) return encoded;
  throw new SerializationError(`the result of job ${job.id} has a ${Math.round(largest / 1048576)} MB frame; one frame carries at most ${MAX_MESSAGE_BYTES / 1048576} MB`);
}

function flush(): void {
  for (const [controller, batch] of batches) {
    if (batch.size === 0 && batch.out.length === 0) continue;
    outbox.post([controller, ...frames({ t: 'results', w: workerId }, batch.rows.bytes(), joinJson(batch.values), JSON.stringify(batch.out), ...batch.bins)]);
  }
  batches.clear();
  heldResults = 0;
  heldText = 0;
  lastFlush = performance.now();
}

/** To the server itself (an empty first frame), not relayed to a controller. */
function toServer(head: WorkerToServer): void {
  outbox.post(['', ...frames(head)]);
}

function overMemoryCeiling(): boolean {
  if (!maxRssBytes) return false;
  const now = performance.now();
  if (now - lastRssCheck < RSS_CHECK_INTERVAL_MS) return false;
  lastRssCheck = now;
  return process.memoryUsage.rss() > maxRssBytes;
}

async function runQueue(): Promise<void> {
  running = true;
  // Start times are wall-clock (comparable with the caller's queue and finish times), taken from
  // the monotonic clock every job reads anyway: one Date.now() per wake-up rather than per job.
  let wallOffset = Date.now() - performance.now();
  while (queue.length > 0 && !retiring) {
    const job = queue.shift()!;
    if (job.timeoutMs > 0) {
      flush(); // results of earlier jobs must not die with this one if it times out
      toServer({ t: 'running', w: workerId, job: job.id, timeoutMs: job.timeoutMs });
      // Sends leave only when the event loop turns, and a job that spins never lets it: send first.
      await outbox.flushed();
    }
    const t0 = performance.now();
    const startedAt = Math.floor(wallOffset + t0);
    const definition = lookup(job.controller, job.fn);
    current = job;
    capture.begin(job.id);
    try {
      if (!definition) throw unknownFunction(job.controller, job.fn);
      let value = definition.fn(...argumentsOf(job));
      if (value && typeof (value as PromiseLike<unknown>).then === 'function') {
        flush(); // don't hold finished results while this job waits
        value = await value;
        wallOffset = Date.now() - performance.now(); // the wall clock may have been set meanwhile
      }
      record(job, true, value, startedAt, t0, definition.version);
    } catch (error) {
      record(job, false, describeError(error), startedAt, t0, definition?.version ?? 0);
    } finally {
      capture.end();
      current = undefined;
    }
    if (job.timeoutMs > 0) {
      flush(); // its result is out before the server's timer is disarmed
      toServer({ t: 'ran', w: workerId, job: job.id });
    }
    if (overMemoryCeiling()) {
      retiring = true;
      flush();
      toServer({ t: 'recycle', w: workerId, rssMb: Math.round(process.memoryUsage.rss() / 1048576) });
      break;
    }
    if (queue.length === 0 || lastJobEnd - lastFlush >= FLUSH_INTERVAL_MS || heldResults >= FLUSH_MAX_RESULTS || heldText >= FLUSH_MAX_TEXT) {
      flush();
      // A send posted while an earlier one still awaits its turn leaves only when the event loop
      // turns, which a sync job never lets happen: let it go now, so a result never waits for later jobs.
      if (queue.length > 0) await outbox.flushed();
    }
  }
  running = false;
}

function handleJobs(controller: string, message: Buffer[]): void {
  const runs = readJson<JobRun[]>(message[2], 'job runs');
  if (!Array.isArray(runs)) throw new ProtocolError('job runs must be a list');
  let frame = 3;
  const jobs: QueuedJob[] = [];
  for (const run of runs) {
    const [first, count, fn, timeoutMs, binaryFrames] = Array.isArray(run) ? run : [];
    if (!Number.isSafeInteger(first) || !Number.isInteger(count) || count! < 1 || typeof fn !== 'string' || typeof timeoutMs !== 'number' || !Number.isInteger(binaryFrames)) {
      throw new ProtocolError('a job run must be [first id, count ≥ 1, function, timeout ms, binary frames]');
    }
    const values = parseRun(message[frame++], count!);
    const nbins = binaryFrames! > 0 ? readUint32s(message[frame++], count!, 'binary frame counts') : undefined;
    for (let i = 0; i < count!; i++) {
      const n = nbins ? nbins[i]! : 0;
      jobs.push({ controller, id: first! + i, fn, value: values[i], bins: n > 0 ? message.slice(frame, frame + n) : NO_FRAMES, timeoutMs });
      frame += n;
    }
  }
  // Nothing is queued from a message that turns out malformed part way.
  for (const job of jobs) queue.push(job);
  if (!running && !retiring) void runQueue();
}

function handle(message: Buffer[]): void {
  const controller = message[0]!.toString();
  const head = readHead<ControllerToServer>(message[1]);
  switch (head.t) {
    case 'define':
      return handleDefine(controller, readJson<{ defs: DefinitionSpec[] }>(message[2], 'definitions').defs);
    case 'jobs':
      return handleJobs(controller, message);
    default:
      process.stderr.write(`worker ${workerId}: ignoring message of type ${head.t}\n`);
  }
}

/**
 * A spare is started with no id and waits, Node and its own modules loaded, until its server
 * writes the id it takes as a line on its stdin: a refresh or a crash then has a worker ready in
 * milliseconds rather than a Node start-up later.
 */
function promotion(): Promise<number> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const newline = text.indexOf('\n');
      if (newline < 0) return;
      process.stdin.off('data', onData);
      resolve(Number(text.slice(0, newline)));
    };
    process.stdin.on('data', onData);
  });
}

// A worker must not outlive its server: the server holds our stdin, and its end means the server is gone.
process.stdin.on('end', () => process.exit(0));
// Listening before anything is awaited: a flowing stdin drops what arrives with no 'data' listener.
const promoted = Number.isNaN(workerId) ? promotion() : undefined;
process.stdin.resume();
// A spare tells its pool that it has loaded, on the pipe the pool gave it for that alone.
if (promoted && process.env.TSGATHER_SPARE_FD) writeSync(Number(process.env.TSGATHER_SPARE_FD), 'loaded\n');

if (promoted) workerId = await promoted;
// A spare imports --module only once promoted: a refresh runs the module as it is on disk then, and
// spares hold no second copy of what it loads (nor anything it takes for itself, a port, say).
await loadPreloadedModule();
socket.routingId = `w${workerId}`;
socket.connect(endpoint);
// An empty first frame addresses the server itself; otherwise it names the controller to relay to.
toServer({ t: 'ready', w: workerId, pid: process.pid, functions: [...preloaded.keys()] });
await receiveLoop(socket, handle, (error) => process.stderr.write(`worker ${workerId}: bad message dropped: ${describeError(error).message}\n`));
