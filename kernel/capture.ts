/**
 * In the cell worker: what `sg.define(name, fn)` takes from the notebook. Each ScatterGather of a
 * cell gets a define that looks the function's free names up in the cell scope (names cells
 * declared: let/const/class/function/var, not the kernel's globals), so that helpers and constants
 * of earlier cells travel with it; a name bound to what a cell imported travels as that import.
 * The values it took are remembered: when a later cell binds one of those names anew (a helper
 * redefined, a constant reassigned), the function is defined again, a new version, at the end of
 * that cell, or before a job call (map, mapResults, submit, addJobAsync) that comes first.
 * A value changed in place (an array pushed to) is not noticed: define again to ship it.
 */
import type { DefineOptions, ScatterGather } from '../caller/index.js';
import { CAPTURE_NAME } from '../protocol/definition-captures.js';

type Imported = (specifier: string, ...path: string[]) => unknown;
type Define = ScatterGather['define'];

/** Global eval: a name is read as a cell would read it, from the global lexical scope first. */
// biome-ignore lint/security/noGlobalEval: reading a cell's binding by name is the point
const globalEval = globalThis.eval;

interface Made {
  fn: Parameters<Define>[1];
  options: DefineOptions;
  /** The cell names it captured, and the values they had. */
  seen: Map<string, unknown>;
}

/** Calls that queue jobs and may wait a moment: a function whose captured names changed is redefined first. */
const JOB_CALLS = ['map', 'mapResults', 'submit', 'addJobAsync'] as const;

export class CellCapture {
  /** The global object's names and values once the kernel's own globals are in. */
  private baseline = new Map<string, unknown>();
  /** Modules cells imported or required: specifier, what it gave, and the path from import(specifier) to that. */
  private readonly modules: Array<{ specifier: string; root: object; path: string[] }> = [];
  private readonly tracked = new Map<ScatterGather, Map<string, Made>>();
  private readonly refreshing = new WeakMap<ScatterGather, Promise<void>>();

  constructor(private readonly imported?: Imported) {}

  /** Takes the global object's names and values, once the kernel's own globals are in: while they keep those values, they are not cell names. */
  sealBaseline(): void {
    this.baseline = new Map(Object.getOwnPropertyNames(globalThis).map((name) => [name, readGlobal(name)]));
  }

  recordImport(specifier: string, namespace: unknown): void {
    if (namespace && typeof namespace === 'object') this.remember(specifier, namespace, []);
  }

  recordRequire(id: string, exports: unknown): void {
    // import() of a CommonJS module gives its exports as `default`
    if (exports && (typeof exports === 'object' || typeof exports === 'function')) this.remember(id, { default: exports }, []);
  }

  /** The value a cell bound to `name`, if any: a global counts only once a cell rebinds or shadows it (`const URL = …`). */
  lookup(name: string): { value: unknown } | undefined {
    if (!CAPTURE_NAME.test(name)) return undefined;
    let value: unknown;
    try {
      value = globalEval(name);
    } catch {
      return undefined; // not bound, or not yet initialised
    }
    if (this.baseline.has(name) && Object.is(this.baseline.get(name), value)) return undefined;
    return { value };
  }

  /** Gives `sg` a define that captures from the cell scope, and job calls that first redefine what went stale. */
  track(sg: ScatterGather): void {
    const made = new Map<string, Made>();
    this.tracked.set(sg, made);
    sg.once('exit', () => this.tracked.delete(sg));
    const define = sg.define.bind(sg);
    const capturing: Define = async (name, fn, options = {}) => {
      const seen = new Map<string, unknown>();
      const scope = (free: string) => {
        const found = this.lookup(free);
        if (!found) return undefined;
        seen.set(free, found.value);
        return { value: this.shippable(found.value) };
      };
      const version = await define(name, fn, { scope, ...options });
      made.set(name, { fn, options, seen });
      return version;
    };
    Object.defineProperty(sg, 'define', { value: capturing, configurable: true, writable: true });
    for (const call of JOB_CALLS) {
      const original = (sg[call] as (...args: unknown[]) => Promise<unknown>).bind(sg);
      // Nothing stale (the rule): the call goes through at once, so jobs keep the order they were asked in.
      const checked = (...args: unknown[]) => (this.stale(made).length === 0 ? original(...args) : this.refresh(sg).then(() => original(...args)));
      Object.defineProperty(sg, call, { value: checked, configurable: true, writable: true });
    }
  }

  /** At the end of a cell: every tracked function whose captured names changed is defined again. */
  async afterCell(): Promise<void> {
    await Promise.all([...this.tracked.keys()].map((sg) => this.refresh(sg)));
  }

  /** One refresh of a pool at a time: a job call's and the cell end's must not define the same function twice. */
  private refresh(sg: ScatterGather): Promise<void> {
    const next = (this.refreshing.get(sg) ?? Promise.resolve()).then(() => this.redefineStale(sg));
    this.refreshing.set(sg, next);
    return next;
  }

  private async redefineStale(sg: ScatterGather): Promise<void> {
    const made = this.tracked.get(sg);
    if (!made) return;
    for (const [name, changed] of this.stale(made)) {
      const record = made.get(name)!;
      try {
        await sg.define(name, record.fn, record.options);
      } catch (error) {
        // Said once per change: the names' new values are taken as seen.
        for (const free of record.seen.keys()) record.seen.set(free, this.lookup(free)?.value);
        process.stderr.write(`tsgather: ${changed.map((n) => `'${n}'`).join(', ')} changed, but '${name}' could not be defined again with the new value: ${(error as Error).message}\n`);
      }
    }
  }

  /** Functions defined from this notebook whose captured names now hold other values, with those names. */
  private stale(made: Map<string, Made>): Array<[string, string[]]> {
    const stale: Array<[string, string[]]> = [];
    for (const [name, record] of made) {
      const changed = [...record.seen].filter(([free, value]) => {
        const now = this.lookup(free);
        return !now || !Object.is(now.value, value);
      });
      if (changed.length > 0) stale.push([name, changed.map(([free]) => free)]);
    }
    return stale;
  }

  /** What a cell imported travels as that import; anything else as it is. */
  private shippable(value: unknown): unknown {
    if (!this.imported || value === null || (typeof value !== 'object' && typeof value !== 'function')) return value;
    for (const { specifier, root, path } of this.modules) {
      if (root === value) return this.imported(specifier, ...path);
      const key = keyOf(root, value);
      if (key !== undefined) return this.imported(specifier, ...path, key);
      const fallback = read(root, 'default');
      if (fallback && fallback !== root && (typeof fallback === 'object' || typeof fallback === 'function')) {
        const inner = keyOf(fallback as object, value);
        if (inner !== undefined) return this.imported(specifier, ...path, 'default', inner);
      }
    }
    return value;
  }

  private remember(specifier: string, root: object, path: string[]): void {
    if (!this.modules.some((m) => m.specifier === specifier && m.root === root)) this.modules.push({ specifier, root, path });
  }
}

/** Never equal to a value read: a global whose getter throws. */
const UNREADABLE = Symbol('unreadable');

function readGlobal(name: string): unknown {
  try {
    return (globalThis as Record<string, unknown>)[name];
  } catch {
    return UNREADABLE;
  }
}

function read(object: object, key: string): unknown {
  try {
    return (object as Record<string, unknown>)[key];
  } catch {
    return undefined; // an export not yet initialised
  }
}

function keyOf(object: object, value: unknown): string | undefined {
  for (const key of Object.keys(object)) if (read(object, key) === value) return key;
  return undefined;
}
