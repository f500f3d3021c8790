/**
 * define() and sync() for a ScatterGather: each definition is checked, its captured names found
 * (definition-capture.ts), given the caller's directory as the base its imports resolve from and
 * the local modules synced so far, then handed to the controller with its next version. Keeping
 * the last spec of each name lets sync() ship new module versions with every definition already made.
 */
import { pathToFileURL } from 'node:url';
import type { DefinitionSpec, ShippedModule } from '../protocol/index.js';
import { captureClosure } from './definition-capture.js';
import { mergeModules, readModules } from './definition-modules.js';
import { checkFunctionName } from './job-encoding.js';
import { checkedLabels } from './job-options.js';
import type { DefineOptions } from './types.js';

/** What sync() reports of each module it shipped: its path (relative to the caller's directory) and the SHA-256 of its text. */
export interface SyncedModule {
  path: string;
  hash: string;
}

export class DefinitionShipper {
  /** The latest version of each name (a reattached session seeds it with the session's, so versions number on). */
  readonly versions = new Map<string, number>();
  private readonly shipped = new Map<string, DefinitionSpec>();
  private modules: ShippedModule[] = [];
  private readonly baseUrl: string;

  constructor(
    /** The directory imports resolve from, and sync() paths are relative to. */
    readonly base: string,
    /** Hands over the jobs queued so far, before a definition goes. */
    private readonly flushJobs: () => void,
    private readonly send: (spec: DefinitionSpec) => Promise<unknown>,
  ) {
    this.baseUrl = pathToFileURL(base.endsWith('/') ? base : `${base}/`).href;
  }

  async define(name: string, fn: ((...args: never[]) => unknown) | string, options: DefineOptions = {}): Promise<number> {
    checkFunctionName(name, 'define');
    const source = typeof fn === 'function' ? Function.prototype.toString.call(fn) : fn;
    if (typeof source !== 'string' || source.trim() === '') throw new TypeError('define() needs a function or its source text');
    if (options.with !== undefined && (typeof options.with !== 'object' || options.with === null)) throw new TypeError("define(): 'with' must be an object of named values");
    if (options.scope !== undefined && typeof options.scope !== 'function') throw new TypeError("define(): 'scope' must be a function");
    const labels = options.labels === undefined ? [] : checkedLabels(options.labels, 'define labels');
    const captured = await captureClosure(name, source, options.with, options.scope);
    return this.ship({
      name,
      version: 0,
      source: captured.source,
      ...(labels.length > 0 ? { labels } : {}),
      ...(captured.captures.length > 0 ? { captures: captured.captures } : {}),
      base: this.baseUrl,
    });
  }

  /** Ships local module files (paths relative to the base) with every definition, those made already included (as new versions) when a file changed. */
  async sync(paths: readonly string[]): Promise<SyncedModule[]> {
    const read = await readModules(this.base, paths);
    const merged = mergeModules(this.modules, read);
    const changed = merged.length !== this.modules.length || merged.some((m, i) => m.hash !== this.modules[i]?.hash || m.path !== this.modules[i]?.path);
    this.modules = merged;
    if (changed) await Promise.all([...this.shipped.values()].map((spec) => this.ship({ ...spec })));
    return read.map(({ path, hash }) => ({ path, hash }));
  }

  private ship(spec: DefinitionSpec): Promise<number> {
    const version = (this.versions.get(spec.name) ?? 0) + 1;
    this.versions.set(spec.name, version);
    const full: DefinitionSpec = { ...spec, version };
    if (this.modules.length > 0) full.modules = this.modules;
    else delete full.modules;
    this.shipped.set(spec.name, full);
    this.flushJobs();
    return this.send(full).then(() => version);
  }
}
