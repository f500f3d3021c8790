/**
 * The functions a worker can run: definitions shipped by each controller (kept per controller, so
 * two controllers sharing a server never see each other's), and those a server's --module exports
 * (preloaded, version 0, seen by every controller). A definition that came with captured names, a
 * base directory or modules is compiled in that scope (definition-scope.ts); a bare source, as
 * older callers send, is evaluated alone.
 */
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { describeError } from '../protocol/codec.js';
import { MAX_FUNCTION_NAME, MAX_PRELOADED_NAMES_BYTES, type DefinitionSpec } from '../protocol/messages.js';
import { compileInScope, type Compiled, type JobFunction } from './definition-scope.js';
import { importerFor } from './module-importer.js';
import { ShippedModules } from './shipped-modules.js';

export type { JobFunction };

export interface Definition {
  fn: JobFunction;
  /** The controller's version of the definition; 0 for a preloaded function. */
  version: number;
  /** While the modules it imports load: settles once they are in (`fn` then is the function itself), rejects if one failed. */
  ready?: Promise<void>;
}

/** Accepts arrow functions, function declarations/expressions, async ones, and method shorthand. */
/** Global eval: the definition sees the worker's globals, never this module's scope. */
// biome-ignore lint/security/noGlobalEval: running shipped definitions is what a worker is for
const globalEval = globalThis.eval;

/** With a name, the definition's stack frames read `define:<name>:<line>:<column>` (a sourceURL). */
export function compileDefinition(source: string, name?: string): JobFunction {
  const sourceURL = name === undefined ? '' : `\n//# sourceURL=define:${encodeURIComponent(name)}`;
  const attempts = [`(${source})${sourceURL}`, `({${source}})${sourceURL}`];
  for (const code of attempts) {
    let value: unknown;
    try {
      value = globalEval(code);
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

/** Stands in for a definition that failed to compile here: its jobs fail with why, rather than the define message being lost. */
function failedDefinition(def: DefinitionSpec, error: unknown): JobFunction {
  const { name, message } = describeError(error);
  return () => {
    throw Object.assign(new Error(`definition of '${def.name}' v${def.version} failed to compile here: ${name}: ${message}`), {
      name: 'DefinitionError',
    });
  };
}

export class Definitions {
  /** Kept as Definitions, so a lookup of a preloaded function allocates nothing. */
  private readonly preloaded = new Map<string, Definition>();
  private readonly byController = new Map<string, Map<string, Definition>>();
  private readonly shipped: ShippedModules;

  constructor(options: { shippedModulesDir?: string } = {}) {
    this.shipped = new ShippedModules(options.shippedModulesDir);
  }

  /** Imports a --module and keeps every function it exports (its default export's too). */
  async preload(modulePath: string): Promise<void> {
    const mod = (await import(pathToFileURL(path.resolve(modulePath)).href)) as Record<string, unknown>;
    const exported = { ...(mod.default && typeof mod.default === 'object' ? mod.default : {}), ...mod };
    for (const [name, value] of Object.entries(exported)) {
      if (typeof value !== 'function') continue;
      // addJob refuses such a name, so the function could never be called.
      if (name.length > MAX_FUNCTION_NAME)
        throw new Error(`--module ${modulePath} exports a function named '${name.slice(0, 40)}…' (${name.length} characters); a function name is at most ${MAX_FUNCTION_NAME}`);
      this.preloaded.set(name, { fn: value as JobFunction, version: 0 });
    }
    const bytes = Buffer.byteLength(JSON.stringify(this.preloadedNames()));
    if (bytes > MAX_PRELOADED_NAMES_BYTES) {
      throw new Error(
        `--module ${modulePath} exports ${this.preloaded.size} functions whose names take ${bytes} bytes; at most ${MAX_PRELOADED_NAMES_BYTES} fit in the messages that announce a worker. Export fewer, or spread them over modules for different servers`,
      );
    }
  }

  /** What a worker announces when it is ready. */
  preloadedNames(): string[] {
    return [...this.preloaded.keys()];
  }

  /** A definition that fails to compile is kept as one that throws a DefinitionError. */
  define(controller: string, defs: DefinitionSpec[]): void {
    let table = this.byController.get(controller);
    if (!table) this.byController.set(controller, (table = new Map()));
    for (const def of defs) {
      let definition: Definition;
      try {
        const compiled = this.compile(controller, def);
        const made: Definition = { fn: compiled.fn, version: def.version, ready: compiled.ready };
        // Once its imports are in, its jobs call the function itself rather than a wrapper that waits.
        const direct = compiled.direct;
        if (direct)
          compiled.ready?.then(
            () => {
              made.fn = direct;
              made.ready = undefined;
            },
            () => {},
          );
        definition = made;
      } catch (error) {
        definition = { fn: failedDefinition(def, error), version: def.version };
      }
      table.set(def.name, definition);
    }
  }

  private compile(controller: string, def: DefinitionSpec): Compiled {
    if (def.captures === undefined && def.base === undefined && def.modules === undefined) return { fn: compileDefinition(def.source, def.name) };
    if (def.modules !== undefined && !Array.isArray(def.modules)) throw new TypeError('the modules of a definition must be a list');
    if (def.captures !== undefined && !Array.isArray(def.captures)) throw new TypeError('the captured names of a definition must be a list');
    const shipped = def.modules?.length ? this.shipped.place(controller, def.modules) : undefined;
    return compileInScope(def, importerFor(def.base, shipped));
  }

  /** Drops a controller's definitions: its session ended. */
  forget(controller: string): void {
    this.byController.delete(controller);
    this.shipped.forget(controller);
  }

  /** The controller's own definition first, then a preloaded function of that name. */
  lookup(controller: string, name: string): Definition | undefined {
    return this.byController.get(controller)?.get(name) ?? this.preloaded.get(name);
  }

  /** The error a job of an unknown function fails with, naming what is known. */
  unknownFunction(controller: string, name: string): Error {
    const known = [...(this.byController.get(controller)?.keys() ?? []), ...this.preloaded.keys()];
    const error = new Error(`no function named '${name}' on this worker; ${known.length ? `known: ${known.join(', ')}` : 'nothing is defined yet'} (use define() first)`);
    error.name = 'UnknownFunctionError';
    return error;
  }
}
