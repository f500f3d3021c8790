/**
 * Jobs on their way from the caller to the controller: held here, encoded, and handed over in
 * messages of bounded size as the controller's window allows, so that a million queued jobs cost
 * the controller no memory until it can use them.
 */
import { frames, slicePacked, uint32Bytes, type CallerToController, type Outbox, type PackedValues } from '../protocol/index.js';
import { sum, type EncodedItems } from './job-encoding.js';
import type { RunSpec } from './job-options.js';

/** Caller → controller messages stay below this many jobs so no single message grows huge. */
const MAX_JOBS_PER_MESSAGE = 20_000;
/** Jobs handed to the controller and not yet answered; the rest wait here, encoded, so the controller's memory stays bounded. */
const CONTROLLER_WINDOW = 100_000;

/**
 * Jobs of one addJob call (ids `first`, `first + 1`, ...), at most one pack group of them, handed to
 * the controller from `next` on as its window allows: a queued job costs its bytes and an offset.
 */
interface OutgoingChunk {
  count: number;
  packed: PackedValues;
  bins: Uint8Array[];
  nbins?: number[];
  first: number;
  fn: string;
  spec: RunSpec;
  /** A job's id minus its index in the call's items (a fold's reducer gets that index). */
  base: number;
  next: number;
  nextBin: number;
}

export class JobOutbox {
  private readonly outgoing: OutgoingChunk[] = [];
  /** Jobs handed to the controller whose results have not come back. */
  private inController = 0;
  private flushScheduled = false;
  private closed = false;

  constructor(private readonly outbox: Outbox) {}

  /** Whether jobs wait here, not yet handed to the controller. */
  get holding(): boolean {
    return this.outgoing.length > 0;
  }

  /** Queues items `start` to `end` of `encoded` as jobs `first`, `first + 1`, ...: one outgoing chunk per pack group. */
  add(first: number, fn: string, encoded: EncodedItems, start: number, end: number, spec: RunSpec): void {
    let binAt = encoded.nbins ? sum(encoded.nbins, 0, start) : 0;
    let groupStart = 0;
    for (const group of encoded.groups) {
      const groupEnd = groupStart + group.offsets.length - 1;
      const from = Math.max(start, groupStart);
      const to = Math.min(end, groupEnd);
      if (from < to) {
        const binCount = encoded.nbins ? sum(encoded.nbins, from, to) : 0;
        this.outgoing.push({
          first: first + (from - start),
          fn,
          spec,
          base: first - start,
          count: to - from,
          packed: slicePacked(group, from - groupStart, to - groupStart),
          nbins: encoded.nbins?.slice(from, to),
          bins: binCount > 0 ? encoded.bins.slice(binAt, binAt + binCount) : [],
          next: 0,
          nextBin: 0,
        });
        binAt += binCount;
      }
      if (groupEnd >= end) break;
      groupStart = groupEnd;
    }
    this.scheduleFlush();
  }

  /** `count` of the jobs handed over got their results: the window has room again. */
  answered(count: number): void {
    this.inController -= count;
    if (this.outgoing.length > 0) this.flush();
  }

  /** Nothing more is handed over (the controller is gone). */
  close(): void {
    this.closed = true;
  }

  /**
   * Hands queued jobs to the controller, as far as its window allows (`force`: all of them, so
   * that a definition or command that follows does not overtake them).
   */
  flush(force = false): void {
    this.flushScheduled = false;
    if (this.closed) return;
    let credit = force ? Infinity : CONTROLLER_WINDOW - this.inController;
    // Top up in sizeable steps rather than a few jobs per result message.
    if (!force && credit < Math.min(CONTROLLER_WINDOW / 4, this.queuedHere())) return;
    while (credit > 0 && this.outgoing.length > 0) {
      const chunk = this.outgoing[0]!;
      const end = Math.min(chunk.count, chunk.next + Math.min(credit, MAX_JOBS_PER_MESSAGE));
      const count = end - chunk.next;
      const binCount = chunk.nbins ? sum(chunk.nbins, chunk.next, end) : 0;
      const { values, offsets } = slicePacked(chunk.packed, chunk.next, end);
      const head: CallerToController = { t: 'jobs', first: chunk.first + chunk.next, count, fn: chunk.fn };
      const { timeoutMs, labels, placementMs } = chunk.spec;
      if (timeoutMs > 0) head.timeoutMs = timeoutMs;
      if (labels) head.labels = labels;
      if (placementMs !== undefined) head.placementMs = placementMs;
      if (chunk.spec.stream) head.stream = true;
      if (chunk.spec.fold) head.fold = [chunk.spec.fold.key, chunk.base - (chunk.spec.fold.offset ?? 0), chunk.spec.fold.flushMs];
      this.outbox.post([
        ...frames(head),
        values,
        uint32Bytes(offsets),
        binCount > 0 ? uint32Bytes(Uint32Array.from(chunk.nbins!.slice(chunk.next, end))) : '',
        ...chunk.bins.slice(chunk.nextBin, chunk.nextBin + binCount),
      ]);
      chunk.next = end;
      chunk.nextBin += binCount;
      credit -= count;
      this.inController += count;
      if (chunk.next === chunk.count) this.outgoing.shift();
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Jobs added but still held here, not yet handed to the controller. */
  queuedHere(): number {
    let n = 0;
    for (const chunk of this.outgoing) n += chunk.count - chunk.next;
    return n;
  }
}
