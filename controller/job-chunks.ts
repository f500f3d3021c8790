/**
 * The controller's record of jobs, kept per caller message rather than per job: a chunk is jobs
 * of consecutive ids and one function, with their values exactly as the caller packed them, and
 * a run is a stretch of one chunk's jobs. Queues and workers hold runs, so handing out, finishing
 * and retrying a thousand tiny jobs touches a few objects and typed arrays, never one object per job.
 */
import { SpanList } from '../runtime/id-spans.js';
import { valuesOfRun, uint32Bytes, type FoldTag, type JobRun, type PackedValues } from '../protocol/index.js';

/** What the controller learns of a function's jobs: their average run time sizes each worker's window. */
export interface FunctionStats {
  avgRunMs?: number;
}

export interface Chunk extends PackedValues {
  first: number;
  count: number;
  fn: string;
  timeoutMs: number;
  /** Run only on servers carrying every one (sorted); absent: anywhere. */
  labels: string[] | undefined;
  /** Its queue: the function's name, with its labels when it has any. */
  queueKey: string;
  /** With labels: when its jobs fail as unplaceable if no connected server carries them (epoch ms; 0: never). */
  placeBy: number;
  /** Its jobs stream parts (sg.stream). */
  stream: boolean;
  /** Its jobs are folded on their workers (mapReduce onServers). */
  fold: FoldTag | undefined;
  stats: FunctionStats;
  /** Binary frames per job, and where each job's frames start in `bins` (count + 1 entries); absent when no job has any. */
  nbins?: Uint32Array;
  binStarts?: Uint32Array;
  bins: Buffer[];
  /** 1 once a job has its result (a later one is a duplicate). */
  done: Uint8Array;
  /** Jobs still without a result. */
  open: number;
  /** Failed attempts charged to a job (by index), for the few that were charged. */
  charged?: Map<number, number>;
}

/** Jobs `start` to `end - 1` of a chunk (indices, not ids). */
export interface Run {
  chunk: Chunk;
  start: number;
  end: number;
  /** When it went to a worker (epoch ms). */
  dispatchedAt: number;
}

/** Where a chunk's jobs may run: servers carrying every label, found before `placeBy` (epoch ms; 0: no limit). */
export interface Placement {
  labels?: string[];
  placeBy?: number;
  /** Its jobs stream parts back (sg.stream). */
  stream?: boolean;
  fold?: FoldTag;
}

/** A caller's fold tag, checked: the one rule, in protocol/, that workers check their job runs by too. */
export { checkedFold } from '../protocol/index.js';

export function makeChunk(first: number, fn: string, timeoutMs: number, stats: FunctionStats, packed: PackedValues, nbins: Uint32Array | undefined, bins: Buffer[], placement: Placement = {}): Chunk {
  const labels = placement.labels?.length ? placement.labels : undefined;
  const count = packed.offsets.length - 1;
  let binStarts: Uint32Array | undefined;
  if (nbins) {
    binStarts = new Uint32Array(count + 1);
    for (let i = 0; i < count; i++) binStarts[i + 1] = binStarts[i]! + nbins[i]!;
  }
  // Every field in one literal, none spread: a spread of `packed` or fields added later make V8 build
  // each chunk slowly, in dictionary mode (about 9 µs a chunk against 0.1).
  return {
    values: packed.values,
    offsets: packed.offsets,
    first,
    count,
    fn,
    timeoutMs,
    labels,
    queueKey: labels ? `${fn}\u0000${labels.join(',')}` : fn,
    placeBy: labels ? (placement.placeBy ?? 0) : 0,
    stream: placement.stream === true,
    fold: placement.fold,
    stats,
    nbins,
    binStarts,
    bins,
    done: new Uint8Array(count),
    open: count,
    charged: undefined,
  };
}

export function runOf(chunk: Chunk, start: number, end = start + 1): Run {
  return { chunk, start, end, dispatchedAt: 0 };
}

export function attemptsOf(chunk: Chunk, index: number): number {
  return chunk.charged?.get(index) ?? 0;
}

/** Charges a failed attempt to a job; returns how many it has had. */
export function charge(chunk: Chunk, index: number): number {
  chunk.charged ??= new Map();
  const attempts = attemptsOf(chunk, index) + 1;
  chunk.charged.set(index, attempts);
  return attempts;
}

/** Bytes of the values frame of jobs `start` to `start + count - 1` (see runFrames). */
function valuesBytes(chunk: Chunk, start: number, count: number): number {
  return count === 0 ? 0 : chunk.offsets[start + count]! - chunk.offsets[start]! - 1;
}

/**
 * How many of the `count` jobs from `start` one run can carry when no frame may pass `maxFrame`
 * bytes: its values frame, its frame-count frame and each binary frame. 0 when job `start` alone cannot.
 */
export function jobsWithinFrame(chunk: Chunk, start: number, count: number, maxFrame: number): number {
  let fits = count;
  if (valuesBytes(chunk, start, fits) > maxFrame) {
    let low = 0; // fits
    let high = fits; // does not
    while (high - low > 1) {
      const middle = (low + high) >>> 1;
      if (valuesBytes(chunk, start, middle) <= maxFrame) low = middle;
      else high = middle;
    }
    fits = low;
  }
  const binStarts = chunk.binStarts;
  if (!binStarts) return fits;
  fits = Math.min(fits, Math.floor(maxFrame / Uint32Array.BYTES_PER_ELEMENT));
  for (let job = start; job < start + fits; job++) {
    for (let bin = binStarts[job]!; bin < binStarts[job + 1]!; bin++) if (chunk.bins[bin]!.byteLength > maxFrame) return job - start;
  }
  return fits;
}

/** The largest frame job `index` travels in on its own. */
export function largestFrame(chunk: Chunk, index: number): number {
  let largest = valuesBytes(chunk, index, 1);
  const binStarts = chunk.binStarts;
  for (let bin = binStarts?.[index] ?? 0; binStarts && bin < binStarts[index + 1]!; bin++) largest = Math.max(largest, chunk.bins[bin]!.byteLength);
  return largest;
}

/** A run's entry in a worker's 'jobs' message, and the frames that go with it. */
export function runFrames(run: Run): { meta: JobRun; frames: Uint8Array[] } {
  const { chunk, start, end } = run;
  const binStart = chunk.binStarts ? chunk.binStarts[start]! : 0;
  const binEnd = chunk.binStarts ? chunk.binStarts[end]! : 0;
  const frames: Uint8Array[] = [valuesOfRun(chunk, start, end)];
  if (binEnd > binStart) frames.push(uint32Bytes(chunk.nbins!.subarray(start, end)), ...chunk.bins.slice(binStart, binEnd));
  const meta: JobRun = [chunk.first + start, end - start, chunk.fn, chunk.timeoutMs, binEnd - binStart];
  if (chunk.stream || chunk.fold) meta.push(chunk.stream ? 1 : 0);
  if (chunk.fold) meta.push(chunk.fold);
  return { meta, frames };
}

/** The stretches of a run whose jobs have no result yet. */
export function* openParts(run: Run): Generator<Run> {
  const { chunk } = run;
  let start = -1;
  for (let i = run.start; i <= run.end; i++) {
    const open = i < run.end && !chunk.done[i];
    if (open && start < 0) start = i;
    else if (!open && start >= 0) {
      yield { chunk, start, end: i, dispatchedAt: run.dispatchedAt };
      start = -1;
    }
  }
}

/** Takes job `index` out of a list of runs, splitting the run that holds it; returns that run, or undefined if none holds it. */
export function removeFromRuns(runs: Run[], chunk: Chunk, index: number): Run | undefined {
  for (let r = 0; r < runs.length; r++) {
    const run = runs[r]!;
    if (run.chunk !== chunk || index < run.start || index >= run.end) continue;
    if (index === run.start) run.start++;
    else if (index === run.end - 1) run.end--;
    else {
      runs.splice(r + 1, 0, { chunk, start: index + 1, end: run.end, dispatchedAt: run.dispatchedAt });
      run.end = index;
    }
    if (run.start === run.end) runs.splice(r, 1);
    return run;
  }
  return undefined;
}

const RELEASED = Buffer.alloc(0);

/** Chunks that still have jobs without a result, ordered by first id (the caller's ids only grow). */
export class ChunkIndex {
  private readonly chunks = new SpanList<Chunk>();

  add(chunk: Chunk): void {
    const last = this.chunks.last;
    if (last && chunk.first < last.first + last.count) throw new RangeError(`job ids ${chunk.first}.. overlap jobs already queued`);
    this.chunks.push(chunk);
  }

  /** The chunk holding job `id`, if it still has open jobs. */
  find(id: number): Chunk | undefined {
    const chunk = this.chunks.find(id);
    return chunk && chunk.open > 0 ? chunk : undefined;
  }

  /**
   * Called when a chunk's last job got its result. Its values and binary frames are let go at once:
   * a closed chunk lingers here until the next sweep, and must not hold on to a payload meanwhile.
   */
  close(chunk: Chunk): void {
    chunk.values = RELEASED;
    chunk.bins = [];
    this.chunks.closedOne();
  }
}
