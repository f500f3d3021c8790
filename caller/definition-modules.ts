/**
 * sg.sync()'s side in the caller: local module files read, with their paths relative to the
 * caller's directory (the base their imports resolve from) and the SHA-256 of their text, which is
 * their version: a worker keeps each version apart (server/shipped-modules.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ShippedModule } from '../protocol/index.js';

/** The directory a script's definitions resolve imports from: its main module's, or the working directory when there is none (`node -e`, a REPL). */
export function defaultBase(): string {
  const main = process.argv[1];
  try {
    if (main && existsSync(main) && statSync(main).isFile()) return path.dirname(path.resolve(main));
  } catch {
    // an unreadable main module: fall back to the working directory
  }
  return process.cwd();
}

/** Skipped inside a directory given to sync(): what a package manager or VCS keeps there. */
const SKIPPED_DIRS = new Set(['node_modules', '.git']);

/** Reads the files (or every file under the directories) at `paths`, relative to `base`. */
export async function readModules(base: string, paths: readonly string[]): Promise<ShippedModule[]> {
  if (!Array.isArray(paths) || paths.some((p) => typeof p !== 'string' || p === '')) throw new TypeError('sync() needs a list of file or directory paths');
  const files: string[] = [];
  for (const given of paths) {
    const absolute = path.resolve(base, given);
    const info = await stat(absolute).catch(() => undefined);
    if (!info) throw new Error(`sync(): '${given}' does not exist (looked for ${absolute}; paths are relative to ${base})`);
    if (info.isDirectory()) files.push(...(await filesUnder(absolute)));
    else files.push(absolute);
  }
  const modules: ShippedModule[] = [];
  for (const file of [...new Set(files)].sort()) {
    const text = await readFile(file, 'utf8');
    modules.push({ path: path.relative(base, file).split(path.sep).join('/'), text, hash: createHash('sha256').update(text).digest('hex') });
  }
  return modules;
}

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) found.push(...(await filesUnder(full)));
    } else if (entry.isFile()) {
      found.push(full);
    }
  }
  return found;
}

/** `current` with `added` put in (a file synced again replaces its older version), in path order. */
export function mergeModules(current: readonly ShippedModule[], added: readonly ShippedModule[]): ShippedModule[] {
  const byPath = new Map(current.map((m) => [m.path, m]));
  for (const m of added) byPath.set(m.path, m);
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}
