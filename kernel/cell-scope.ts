/**
 * In the cell worker: the globals every cell sees — display, input, require, the import helper
 * the transpiler targets, and the `tsgather` engine's exports (wrapped for notebooks).
 */
import { createRequire, isBuiltin } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CellCapture } from './capture.js';
import { createDisplay, type Display, type DisplayMessage } from './display.js';
import { forNotebook, type NotebookEngine } from './scatter-gather.js';
import { IMPORT_HELPER } from './transpile.js';
import type { ScatterGather } from '../caller/index.js';
import { AWAIT_GUARD, ITERATE_GUARD } from './cell-guards.js';
import { awaitGuard, iterateGuard, outsideCells } from './cell-run.js';
import { forCells } from './cell-waits.js';
import type { StreamName } from './worker-messages.js';

export const PACKAGE_NAME = 'tsgather';

export interface ScopeIO {
  cwd: string;
  display: (message: DisplayMessage) => void;
  write: (name: StreamName, text: string) => void;
  input: (prompt: string, password: boolean) => Promise<string>;
}

export interface CellScope {
  display: Display;
  engine?: NotebookEngine;
  /** Why the engine is missing, if it is. */
  engineError?: string;
  /** Called when a cell has run: functions defined from the notebook whose captured names changed are defined again. */
  afterCell(): Promise<void>;
}

export async function installCellScope(io: ScopeIO): Promise<CellScope> {
  const display = createDisplay(io.display);
  const resolver = new Resolver(io.cwd);
  let engine: NotebookEngine | undefined;
  let engineError: string | undefined;
  let capture: CellCapture | undefined;
  try {
    const exports = { ...(await import(resolver.resolve(PACKAGE_NAME))) } as Record<string, unknown>;
    capture = new CellCapture(typeof exports.imported === 'function' ? (exports.imported as (specifier: string, ...path: string[]) => unknown) : undefined);
    engine = forNotebook(exports, { display, write: io.write, base: io.cwd, capture });
    const spawn = engine.namespace.spawnScatterGather as ((...args: unknown[]) => Promise<ScatterGather>) | undefined;
    // Spawned outside the cell: its receive loop, job output and progress must outlive an interrupt of that cell.
    if (spawn) engine.namespace.spawnScatterGather = async (...args: unknown[]) => forCells(await outsideCells(() => spawn(...args)));
  } catch (error) {
    engineError = `the ${PACKAGE_NAME} engine could not be loaded: ${(error as Error).message}`;
  }

  // guarded like the cell's own awaits: an import in an interrupted cell never resumes it
  const cellImport = (specifier: string, options?: ImportCallOptions): Promise<unknown> =>
    awaitGuard(
      (async () => {
        if (specifier === PACKAGE_NAME && engine) return engine.namespace;
        const namespace = await import(resolver.resolve(specifier), options);
        capture?.recordImport(specifier, namespace); // what a function takes from it travels as this import
        return namespace;
      })(),
    );
  const cellRequire = Object.assign(
    (id: string): unknown => {
      if (id === PACKAGE_NAME && engine) return engine.namespace;
      const exports = resolver.require(id);
      capture?.recordRequire(id, exports);
      return exports;
    },
    {
      resolve: (id: string) => resolver.requireResolve(id),
      cache: resolver.cache,
    },
  );
  const input = (prompt = '', options: { password?: boolean } = {}) => io.input(String(prompt), !!options.password);

  const globals: Record<string, unknown> = {
    ...(engine?.namespace ?? { spawnScatterGather: () => Promise.reject(new Error(engineError)) }),
    display,
    input,
    require: cellRequire,
    [IMPORT_HELPER]: cellImport,
    [AWAIT_GUARD]: awaitGuard,
    [ITERATE_GUARD]: iterateGuard,
  };
  for (const [name, value] of Object.entries(globals)) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  }
  capture?.sealBaseline();
  return { display, engine, engineError, afterCell: async () => capture?.afterCell() };
}

/**
 * Module resolution for cells: relative paths and packages from the notebook's directory first,
 * then from the kernel's own package (which finds `tsgather` itself and its dependencies).
 */
class Resolver {
  private readonly fromCwd: NodeJS.Require;
  private readonly fromKernel = createRequire(import.meta.url);
  private readonly cwdUrl: string;

  constructor(private readonly cwd: string) {
    this.fromCwd = createRequire(join(cwd, 'notebook-cell.js'));
    this.cwdUrl = pathToFileURL(join(cwd, 'notebook-cell.js')).href;
  }

  get cache(): NodeJS.Require['cache'] {
    return this.fromCwd.cache;
  }

  /** A URL for import(); import.meta.resolve with a parent needs --experimental-import-meta-resolve (set on the worker). */
  resolve(specifier: string): string {
    if (isBuiltin(specifier) || /^[a-z][a-z0-9+.-]*:/i.test(specifier)) return specifier;
    if (/^\.{0,2}\//.test(specifier)) return pathToFileURL(resolve(this.cwd, specifier)).href;
    try {
      return import.meta.resolve(specifier, this.cwdUrl);
    } catch {
      return import.meta.resolve(specifier);
    }
  }

  require(id: string): unknown {
    return this.fromCwd(this.requireResolve(id));
  }

  requireResolve(id: string): string {
    try {
      return this.fromCwd.resolve(id);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND' || /^\.{0,2}\//.test(id)) throw error;
      return this.fromKernel.resolve(id);
    }
  }
}
