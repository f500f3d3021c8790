/**
 * How a definition's `import(x)` and `require(x)` resolve on a worker: as they would in the
 * caller's notebook or script. A module shipped with the definition (sg.sync) comes first; then
 * the caller's directory (`base`: relative paths and packages, walking up node_modules as Node
 * does — the same directory where the worker shares the caller's filesystem); then, for a
 * package, the server's own directory (what that server has installed). A module found nowhere is
 * a ModuleNotFoundError naming this server, the specifier and where it looked.
 */
import { createRequire, isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import type { ShippedDir } from './shipped-modules.js';

export interface Importer {
  import(specifier: string, options?: ImportCallOptions): Promise<unknown>;
  require: ((id: string) => unknown) & { resolve(id: string): string };
}

/** Which server this worker belongs to, for error messages: its name (--name, else host-pid as the server names itself). */
export function serverName(): string {
  return process.env.TSGATHER_SERVER_NAME || `${os.hostname()}-${process.ppid}`;
}

export class ModuleNotFoundError extends Error {
  override name = 'ModuleNotFoundError';
  readonly code = 'ERR_MODULE_NOT_FOUND';
}

type ImportFn = (specifier: string, options?: ImportCallOptions) => Promise<unknown>;

/** One `import()` per directory, compiled as if written in a file there, so that Node's own loader resolves from it. */
const importers = new Map<string, ImportFn>();

function importFrom(dir: string): ImportFn {
  let importer = importers.get(dir);
  if (!importer && !vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER) {
    // Node before 20.12: resolve by hand (packages by CommonJS rules), then import the file.
    const require = createRequire(path.join(dir, '[tsgather definition].js'));
    importer = (specifier, options) =>
      import(
        isRelative(specifier) ? pathToFileURL(path.resolve(dir, specifier)).href : isBare(specifier) && !isBuiltin(specifier) ? pathToFileURL(require.resolve(specifier)).href : specifier,
        options
      );
    importers.set(dir, importer);
  }
  if (!importer) {
    const script = withoutLoaderWarning(
      () =>
        new vm.Script('(specifier, options) => import(specifier, options)', {
          filename: path.join(dir, '[tsgather definition].js'),
          importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER as never,
        }),
    );
    importer = script.runInThisContext() as ImportFn;
    importers.set(dir, importer);
  }
  return importer;
}

/** Node calls USE_MAIN_CONTEXT_DEFAULT_LOADER experimental and says so on stderr at its first use, which would reach a job's output: not that warning. */
let filtering = false;
function withoutLoaderWarning<T>(make: () => T): T {
  if (!filtering) {
    filtering = true;
    const emit = process.emitWarning;
    process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
      if (String(warning).includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
      (emit as (...args: unknown[]) => void).call(process, warning, ...rest);
    }) as typeof process.emitWarning;
  }
  return make();
}

function isRelative(specifier: string): boolean {
  return /^\.{1,2}(\/|$)/.test(specifier);
}

function isBare(specifier: string): boolean {
  return !isRelative(specifier) && !path.isAbsolute(specifier) && !/^[a-z][a-z0-9+.-]*:/i.test(specifier);
}

function notFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/** The importer of a definition whose caller's directory is `base` (a file URL), with the modules shipped with it. */
export function importerFor(base: string | undefined, shipped: ShippedDir | undefined): Importer {
  const baseDir = base ? path.resolve(fileURLToPath(base)) : undefined;
  const serverDir = process.cwd();
  /** Where a specifier is looked for, in order: a relative one only from the caller's directory. */
  const dirsFor = (specifier: string): string[] => {
    if (!baseDir) return [serverDir];
    return isBare(specifier) && baseDir !== serverDir ? [baseDir, serverDir] : [baseDir];
  };
  const missing = (specifier: string, dirs: string[], first: unknown): ModuleNotFoundError => {
    const looked = dirs.map((dir) => (dir === baseDir ? `${dir} (the caller's directory)` : `${dir} (the server's directory)`)).join(' and ');
    const hint = isBare(specifier) ? 'install it there' : `ship it with sg.sync(['${specifier}'])`;
    const detail = first instanceof Error ? `: ${first.message}` : '';
    return new ModuleNotFoundError(`cannot import '${specifier}' on server '${serverName()}' (host ${os.hostname()}): not found from ${looked}; ${hint}${detail}`);
  };
  /** Runs `use` with a require from the first directory where `id` is found (a shipped copy first). */
  const requireFrom = <T>(id: string, use: (require: NodeJS.Require, id: string) => T): T => {
    const shippedUrl = baseDir ? shipped?.urlFor(id, baseDir) : undefined;
    if (shippedUrl) {
      const file = fileURLToPath(shippedUrl);
      return use(createRequire(file), file);
    }
    const dirs = dirsFor(id);
    let first: unknown;
    for (const dir of dirs) {
      try {
        return use(createRequire(path.join(dir, '[tsgather definition].js')), id);
      } catch (error) {
        if (!notFound(error)) throw error;
        first ??= error;
      }
    }
    throw missing(id, dirs, first);
  };
  return {
    async import(specifier, options) {
      if (typeof specifier !== 'string') return importFrom(baseDir ?? serverDir)(specifier, options);
      const shippedUrl = baseDir ? shipped?.urlFor(specifier, baseDir) : undefined;
      if (shippedUrl) return import(shippedUrl, options);
      const dirs = dirsFor(specifier);
      let first: unknown;
      for (const dir of dirs) {
        try {
          return await importFrom(dir)(specifier, options);
        } catch (error) {
          if (!notFound(error)) throw error;
          first ??= error;
        }
      }
      throw missing(specifier, dirs, first);
    },
    require: Object.assign((id: string) => requireFrom(id, (req, found) => req(found)), {
      resolve: (id: string) => requireFrom(id, (req, found) => req.resolve(found)),
    }),
  };
}
