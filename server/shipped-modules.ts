/**
 * Local modules shipped with definitions (sg.sync): written by the worker, once per version, into a
 * directory of the controller's session, where imports of them are sent (module-importer.ts). A set
 * of modules shipped together lives in a directory named by the hash of their paths and versions,
 * keeping their relative layout (`../` becomes `__up__/`), so that they import each other as they
 * did at home, and a new version is a new path (Node's module cache keeps the old one apart).
 * The directory is `node_modules/.cache/tsgather/modules` under the server's working directory when
 * it has node_modules (so a shipped module's packages resolve from the server's), else under the
 * temporary directory. A session's directory goes when its session ends.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ShippedModule } from '../protocol/index.js';

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function defaultRoot(): string {
  const nodeModules = path.join(process.cwd(), 'node_modules');
  if (existsSync(nodeModules)) return path.join(nodeModules, '.cache', 'tsgather', 'modules');
  return path.join(os.tmpdir(), `tsgather-modules-${process.getuid?.() ?? 'user'}`);
}

/** A module's place inside its set's directory: its relative path, `..` segments renamed so that none leaves the directory. */
function placeOf(relative: string): string {
  const normal = path.posix.normalize(relative);
  if (normal === '' || normal === '.' || path.posix.isAbsolute(normal) || normal.includes('\0')) throw new Error(`a shipped module's path must be relative: '${relative}'`);
  return normal
    .split('/')
    .map((part) => (part === '..' ? '__up__' : part))
    .join(path.sep);
}

/** A set of shipped modules on this worker's disk. */
export class ShippedDir {
  private readonly paths: Set<string>;

  constructor(
    readonly dir: string,
    modules: readonly ShippedModule[],
  ) {
    this.paths = new Set(modules.map((m) => path.posix.normalize(m.path)));
  }

  /** The file URL of the shipped copy of what `specifier` names from `baseDir`, if it is one of the set. */
  urlFor(specifier: string, baseDir: string): string | undefined {
    let absolute: string;
    if (/^\.{1,2}(\/|$)/.test(specifier)) absolute = path.resolve(baseDir, specifier);
    else if (path.isAbsolute(specifier)) absolute = specifier;
    else if (specifier.startsWith('file:')) absolute = fileURLToPath(specifier);
    else return undefined;
    const relative = path.relative(baseDir, absolute).split(path.sep).join('/');
    return this.paths.has(relative) ? pathToFileURL(path.join(this.dir, placeOf(relative))).href : undefined;
  }
}

export class ShippedModules {
  constructor(private readonly root = defaultRoot()) {}

  /** Writes what of the set is not on disk yet (each file checked against its hash) and returns the set's directory. */
  place(controller: string, modules: readonly ShippedModule[]): ShippedDir {
    const setHash = sha256(modules.map((m) => `${m.path}\0${m.hash}`).join('\n')).slice(0, 24);
    const dir = path.join(this.sessionDir(controller), setHash);
    for (const m of modules) {
      if (typeof m.path !== 'string' || typeof m.text !== 'string' || typeof m.hash !== 'string') throw new Error('a shipped module needs a path, a text and a hash');
      if (sha256(m.text) !== m.hash) throw new Error(`the shipped module '${m.path}' does not match its hash`);
      const target = path.join(dir, placeOf(m.path));
      if (existsSync(target)) continue;
      mkdirSync(path.dirname(target), { recursive: true });
      // Every worker of the server writes the same set: each writes its own file and renames it into place.
      const temporary = `${target}.${process.pid}.tmp`;
      writeFileSync(temporary, m.text);
      renameSync(temporary, target);
    }
    return new ShippedDir(dir, modules);
  }

  /** The session ended: its shipped modules go. */
  forget(controller: string): void {
    rmSync(this.sessionDir(controller), { recursive: true, force: true });
  }

  private sessionDir(controller: string): string {
    return path.join(this.root, sha256(controller).slice(0, 16));
  }
}
