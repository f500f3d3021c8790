/**
 * Jobs a worker folded into its accumulator (mapReduce onServers): acknowledged with a `folded` row,
 * they leave the worker's window, so it gets more, and wait in its `folded` runs until a partial
 * covering them comes. They are still the worker's: if it goes before its partial is out, recovery
 * requeues them (their contributions died with the accumulator), so each job counts exactly once.
 */
import { RowKind, type WorkerRows } from '../protocol/rows.js';
import type { WorkerSlot } from './cluster.js';
import { removeFromRuns, runOf, type Chunk, type Run } from './job-chunks.js';

/** Job `index` of `chunk`, taken from the worker's window, is now held as folded. */
export function holdFolded(slot: WorkerSlot, chunk: Chunk, index: number, dispatchedAt: number): void {
  const last = slot.folded.at(-1);
  // Acks come in the order the jobs were sent: they extend the last run, so the list stays short.
  if (last && last.chunk === chunk && last.end === index) last.end++;
  else slot.folded.push({ chunk, start: index, end: index + 1, dispatchedAt });
}

/** Takes job `index` of `chunk` out of the worker's folded runs: the run it was in, or undefined. */
export function takeFolded(slot: WorkerSlot, chunk: Chunk, index: number): Run | undefined {
  return removeFromRuns(slot.folded, chunk, index);
}

export function isFolded(slot: WorkerSlot, chunk: Chunk, index: number): boolean {
  return slot.folded.some((run) => run.chunk === chunk && run.start <= index && index < run.end);
}

/** Where the group of a partial row at `start` ends: after the covered rows that follow it. */
export function partialGroupEnd(input: WorkerRows, start: number): number {
  let end = start + 1;
  while (end < input.count && input.kind(end) === RowKind.covered) end++;
  return end;
}

/**
 * The jobs of a partial's group (rows `start` to `end - 1`) when they may be completed by it: every
 * one still open and folded on this very worker, none twice. Otherwise undefined, and the partial is
 * dropped whole: taking part of it would count the rest twice.
 */
export function partialJobs(input: WorkerRows, start: number, end: number, slot: WorkerSlot | undefined, find: (id: number) => Chunk | undefined): Array<[Chunk, number]> | undefined {
  if (!slot) return undefined; // from a worker given up on: its folded jobs were requeued then
  const jobs: Array<[Chunk, number]> = [];
  const seen = new Set<number>();
  for (let row = start; row < end; row++) {
    const id = input.job(row);
    const chunk = find(id);
    if (!chunk || seen.has(id)) return undefined;
    const index = id - chunk.first;
    if (chunk.done[index] || !isFolded(slot, chunk, index)) return undefined;
    seen.add(id);
    jobs.push([chunk, index]);
  }
  return jobs;
}

/** The jobs of a dropped partial's group still open and folded on `slot`, taken from it: they run again. */
export function releaseFolded(input: WorkerRows, start: number, end: number, slot: WorkerSlot, find: (id: number) => Chunk | undefined): Run[] {
  const released: Run[] = [];
  for (let row = start; row < end; row++) {
    const id = input.job(row);
    const chunk = find(id);
    if (chunk && !chunk.done[id - chunk.first] && takeFolded(slot, chunk, id - chunk.first)) released.push(runOf(chunk, id - chunk.first));
  }
  return released;
}
