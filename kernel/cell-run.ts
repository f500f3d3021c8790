/**
 * In the cell worker: each execution is a CellRun, carried by an AsyncLocalStorage through
 * everything it starts (promises, timers, I/O callbacks). Interrupting it cancels it:
 *   - its awaits never resume (the transpiler routes every `await` and `for await` of cell code
 *     through the guards below, which hand back a promise that never settles once cancelled);
 *   - the timers and immediates it created whose callback is a function written in a cell are
 *     cleared, and so is any such timer it creates later (a library's own timers are left alone:
 *     a connection pool or a ScatterGather used by the cell must go on working);
 *   - what it prints or displays is dropped;
 *   - its `signal` aborts, which withdraws its waits on ScatterGather (see cell-waits.ts).
 * A run that completed normally is never cancelled: work it left in the background goes on.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { promisify } from 'node:util';
import { writtenInCell } from './cell-sources.js';

type Timer = NodeJS.Timeout | NodeJS.Immediate;

export class CellRun {
  cancelled = false;
  /** Set once the cell has completed (or been cancelled): its timers are no longer tracked. */
  settled = false;
  private readonly controller = new AbortController();
  private readonly timers = new Set<Timer>();
  private readonly onCancel = new Set<() => void>();

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  track(timer: Timer): void {
    if (this.cancelled) clearIfCellCode(timer, new Map());
    else if (!this.settled) {
      this.timers.add(timer);
      if (this.timers.size % 1024 === 0) prune(this.timers);
    }
  }

  /** Runs `cleanup` when the run is cancelled; returns how to withdraw it. */
  whenCancelled(cleanup: () => void): () => void {
    this.onCancel.add(cleanup);
    return () => this.onCancel.delete(cleanup);
  }

  complete(): void {
    this.settled = true;
    this.timers.clear();
    this.onCancel.clear();
  }

  cancel(): void {
    if (this.cancelled || this.settled) return;
    this.cancelled = true;
    this.settled = true;
    const seen = new Map<string, boolean>();
    for (const timer of this.timers) clearIfCellCode(timer, seen);
    this.timers.clear();
    this.controller.abort(Object.assign(new Error('the cell was interrupted'), { name: 'Interrupted' }));
    for (const cleanup of this.onCancel) cleanup();
    this.onCancel.clear();
  }
}

const storage = new AsyncLocalStorage<CellRun>();

export const currentRun = (): CellRun | undefined => storage.getStore();

/** True in the context of an interrupted cell: whatever it does now is dropped. */
export const inCancelledRun = (): boolean => storage.getStore()?.cancelled === true;

export function runCell<T>(run: CellRun, body: () => T): T {
  return storage.run(run, body);
}

/** Runs `body` outside any cell: what it starts (a ScatterGather's receive loop) belongs to no cell. */
export function outsideCells<T>(body: () => T): T {
  return storage.exit(body);
}

/**
 * Records every timer and immediate a running cell creates with setTimeout, setInterval or
 * setImmediate (the globals, and node:timers, which are the same functions). Wrapping them costs
 * only timer creation; an async_hooks init hook would cost every promise as well.
 */
export function trackCellTimers(): void {
  const timers = createRequire(import.meta.url)('node:timers') as Record<string, unknown>;
  const global = globalThis as unknown as Record<string, unknown>;
  for (const name of ['setTimeout', 'setInterval', 'setImmediate']) {
    const original = global[name] as (...args: unknown[]) => Timer;
    const tracked = Object.defineProperties(
      function (this: unknown, ...args: unknown[]): Timer {
        const timer = Reflect.apply(original, this, args);
        storage.getStore()?.track(timer);
        return timer;
      },
      {
        name: { value: name },
        // util.promisify(setTimeout) and the like keep working
        [promisify.custom]: { value: (original as unknown as Record<symbol, unknown>)[promisify.custom] },
      },
    );
    global[name] = tracked;
    timers[name] = tracked;
  }
  syncBuiltinESMExports();
}

/** Clears a timer whose callback was written in a cell; `seen` remembers the verdict by source text. */
function clearIfCellCode(timer: Timer, seen: Map<string, boolean>): void {
  const immediate = !('refresh' in timer);
  const callback = immediate ? (timer as { _onImmediate?: unknown })._onImmediate : (timer as { _onTimeout?: unknown })._onTimeout;
  if (typeof callback !== 'function') return;
  const text = Function.prototype.toString.call(callback);
  let ours = seen.get(text);
  if (ours === undefined) seen.set(text, (ours = writtenInCell(text)));
  if (!ours) return;
  if (immediate) clearImmediate(timer as NodeJS.Immediate);
  else clearTimeout(timer as NodeJS.Timeout);
}

/** Drops timers that have fired (a one-shot Timeout or an Immediate is destroyed once it ran). */
function prune(timers: Set<Timer>): void {
  for (const timer of timers) if ((timer as { _destroyed?: boolean })._destroyed) timers.delete(timer);
}

/** A promise that never settles, and that nothing else holds: what was waiting on it is collected. */
const never = <T>(): Promise<T> => new Promise<T>(() => {});

/** `await x` in cell code becomes `await guard(x)`: in an interrupted cell it never resumes. */
export function awaitGuard<T>(value: T): T | Promise<Awaited<T>> {
  const run = storage.getStore();
  if (!run || (run.settled && !run.cancelled)) return value;
  if (run.cancelled) return never();
  // Awaiting what is not a thenable resumes within this microtask checkpoint, before any interrupt can come.
  if (!isThenable(value)) return value;
  return Promise.resolve(value).then(
    (resolved) => (run.cancelled ? never() : resolved),
    (error: unknown) => (run.cancelled ? never() : Promise.reject(error)),
  );
}

function isThenable(value: unknown): boolean {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * `for await (x of it)` in cell code iterates `iterateGuard(it)`: in an interrupted cell the loop
 * never resumes, and the iterator is closed (`return()`), so an iterator such as
 * ScatterGather.results() hands what it had taken back.
 */
export function iterateGuard<T>(iterable: AsyncIterable<T> | Iterable<T>): AsyncIterable<T> | Iterable<T> {
  const run = storage.getStore();
  const asyncIterator = (iterable as Partial<AsyncIterable<T>> | null | undefined)?.[Symbol.asyncIterator];
  const isSync = typeof asyncIterator !== 'function';
  if (isSync && typeof (iterable as Partial<Iterable<T>> | null | undefined)?.[Symbol.iterator] !== 'function') {
    throw new TypeError(`${iterable === null ? 'null' : typeof iterable} is not async iterable`);
  }
  if (!run || (run.settled && !run.cancelled)) return iterable;
  if (run.cancelled) return { [Symbol.asyncIterator]: () => ({ next: never }) };
  const iterator: AsyncIterator<T> | Iterator<T> = isSync ? (iterable as Iterable<T>)[Symbol.iterator]() : asyncIterator!.call(iterable);
  const withdraw = run.whenCancelled(() => void Promise.resolve(iterator.return?.()).catch(() => undefined));
  const step = async (result: IteratorResult<T> | Promise<IteratorResult<T>>): Promise<IteratorResult<T>> => {
    const { value, done } = await result;
    if (done) withdraw();
    // for await awaits the values of a sync iterator, not those of an async one
    return { value: isSync ? await value : value, done } as IteratorResult<T>;
  };
  const guarded: AsyncIterableIterator<T> = {
    next: (...args: [] | [unknown]) => awaitGuard(step(iterator.next(...args))),
    return: (value?: unknown) => {
      withdraw();
      return awaitGuard(step(iterator.return?.(value) ?? { value: value as T, done: true }));
    },
    throw: (error?: unknown) => {
      withdraw();
      if (!iterator.throw) return Promise.reject(error);
      return awaitGuard(step(iterator.throw(error)));
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return guarded;
}
