/**
 * What a definition takes with it (issue 25, "closures captured"): the free names of its source are
 * found with the parser; each is looked up in `with`, then in the scope given (the kernel gives the
 * notebook's cell scope), and shipped by value: a function as its source (whose own free names are
 * resolved in turn), a ModuleBinding as an import, anything else as data (protocol/codec.ts). A
 * global of the workers stays behind. A name found nowhere, or one that cannot travel, is refused
 * here, at define, with the line that uses it. `import(x)` in every shipped source becomes a call of
 * the importer a worker supplies, which resolves from the caller's directory (see server/module-importer.ts).
 */
import { DEFINITION_IMPORT, DEFINITION_PROVIDED, SerializationError, type CapturedName } from '../protocol/index.js';
import { freeNames } from './definition-free-names.js';
import { lineAt, parseDefinition, type ParsedDefinition } from './definition-syntax.js';
import { encodeCaptured } from './definition-travel.js';

/** Names every worker has: those of this process's global object when tsgather was loaded (Node's globals), before any cell or script code added its own. */
const WORKER_GLOBALS = new Set(Object.getOwnPropertyNames(globalThis));

/** A name bound to what a module exports: shipped as an import, resolved on each worker. */
export class ModuleBinding {
  constructor(
    readonly specifier: string,
    /** Followed from the module's namespace: `['default']`, `['default', 'chunk']`, or `[]` for the namespace itself. */
    readonly path: readonly string[] = [],
  ) {}
}

/** For `define(name, fn, { with: { _: imported('lodash', 'default') } })`: the name is bound, on each worker, to `import('lodash')` followed by `path`. */
export function imported(specifier: string, ...path: string[]): ModuleBinding {
  if (typeof specifier !== 'string' || specifier === '') throw new TypeError('imported() needs a module specifier');
  return new ModuleBinding(specifier, path);
}

/** Where define looks up a free name that `with` does not give: `{ value }` when the name is bound there. */
export type ScopeLookup = (name: string) => { value: unknown } | undefined | Promise<{ value: unknown } | undefined>;

/** define() found a free name it cannot ship: not defined where it looked, or not able to travel. */
export class CaptureError extends Error {
  override name = 'CaptureError';
}

export interface Captured {
  /** The source, its `import(x)` calls rewritten to the worker's importer. */
  source: string;
  captures: CapturedName[];
}

interface Pending {
  name: string;
  at: number;
  guarded: boolean;
  /** The function whose source uses it. */
  user: { label: string; parsed: ParsedDefinition };
}

export async function captureClosure(name: string, source: string, given: Record<string, unknown> = {}, scope?: ScopeLookup): Promise<Captured> {
  const what = `define('${name}')`;
  const main = await parseDefinition(what, source);
  const captures: CapturedName[] = [];
  const queue: Pending[] = [];
  const settled = new Set<string>(DEFINITION_PROVIDED);
  const enqueue = (label: string, parsed: ParsedDefinition) => {
    for (const free of freeNames(parsed.root)) queue.push({ ...free, user: { label, parsed } });
  };
  enqueue(name, main);
  while (queue.length > 0) {
    const use = queue.shift()!;
    if (settled.has(use.name)) continue;
    settled.add(use.name);
    const found = Object.hasOwn(given, use.name) ? { value: given[use.name] } : await scope?.(use.name);
    if (!found) {
      if (WORKER_GLOBALS.has(use.name) || use.guarded) continue;
      throw new CaptureError(
        `${what}: '${use.name}' (${usedAt(use)}) is not defined here: it is not a global of the workers, nor given in { with }${scope ? ', nor a name of the notebook' : ''}. Pass it with define('${name}', fn, { with: { ${use.name} } }), or import it inside the function`,
      );
    }
    captures.push(await capture(what, use, found.value, enqueue));
  }
  return { source: rewriteImports(main), captures };
}

async function capture(what: string, use: Pending, value: unknown, enqueue: (label: string, parsed: ParsedDefinition) => void): Promise<CapturedName> {
  const { name } = use;
  if (value instanceof ModuleBinding) return { name, kind: 'module', specifier: value.specifier, path: [...value.path] };
  if (typeof value === 'function') {
    const text = Function.prototype.toString.call(value);
    if (/\{\s*\[native code\]\s*\}\s*$/.test(text)) {
      throw new CaptureError(`${what}: '${name}' (${usedAt(use)}) cannot travel to the workers: it is a built-in or bound function, which has no source to ship`);
    }
    const parsed = await parseDefinition(`${what}: the function '${name}' it uses`, text);
    enqueue(`'${name}'`, parsed);
    return { name, kind: 'function', source: rewriteImports(parsed), ...(parsed.method ? { method: true } : {}) };
  }
  try {
    return { name, kind: 'value', ...encodeCaptured(value, `'${name}'`) };
  } catch (error) {
    if (!(error instanceof SerializationError)) throw error;
    throw new CaptureError(`${what}: '${name}' (${usedAt(use)}) cannot travel to the workers: ${error.message.replace(/^'[^']*'\s*/, '')}`);
  }
}

function usedAt(use: Pending): string {
  const { line, text } = lineAt(use.user.parsed, use.at);
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return `used at line ${line} of ${use.user.label}: ${JSON.stringify(shown)}`;
}

/** The source with every `import(` expression calling the worker's importer instead (which resolves from the caller's directory). */
function rewriteImports(parsed: ParsedDefinition): string {
  const starts: number[] = [];
  collectImports(parsed.root, starts);
  let out = parsed.source;
  for (const start of starts.sort((a, b) => b - a)) {
    const at = start - parsed.prefix;
    out = out.slice(0, at) + DEFINITION_IMPORT + out.slice(at + 'import'.length);
  }
  return out;
}

function collectImports(node: unknown, starts: number[]): void {
  if (Array.isArray(node)) {
    for (const item of node) collectImports(item, starts);
    return;
  }
  if (typeof node !== 'object' || node === null || typeof (node as { type?: unknown }).type !== 'string') return;
  if ((node as { type: string }).type === 'ImportExpression') starts.push((node as { start: number }).start);
  for (const [key, value] of Object.entries(node)) if (key !== 'loc' && typeof value === 'object') collectImports(value, starts);
}
