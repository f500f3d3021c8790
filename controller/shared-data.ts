/**
 * Values pushed to every worker (sg.push): kept here as the caller encoded them, sent once to each
 * server in session (it keeps them for its workers, present and future) and again to servers that
 * join later. The controller never decodes them.
 */
import { toServer, type Frames } from '../protocol/index.js';
import type { Cluster, ServerSlot } from './cluster.js';
import { frameLimitOf, megabytes } from './job-ledger.js';

interface SharedValue {
  name: string;
  version: number;
  plain: boolean;
  /** The value's text, then its binary frames. */
  frames: Buffer[];
  bytes: number;
}

export class SharedData {
  private readonly values = new Map<string, SharedValue>();

  constructor(private readonly cluster: Cluster) {}

  /**
   * Keeps `name`'s new value and sends it to every server in session. Throws, keeping nothing, when
   * a frame of it passes what a server in session takes.
   */
  put(name: string, plain: boolean, frames: Buffer[]): number {
    if (typeof name !== 'string' || name.length === 0 || frames.length === 0) throw new TypeError('push needs a name and a value');
    const largest = Math.max(...frames.map((frame) => frame.length));
    for (const server of this.cluster.servers()) {
      if (largest > server.maxFrame) throw new RangeError(`'${name}' has a ${megabytes(largest)} frame; ${frameLimitOf(server)}`);
    }
    const version = (this.values.get(name)?.version ?? 0) + 1;
    const value: SharedValue = { name, version, plain, frames, bytes: frames.reduce((n, frame) => n + frame.length, 0) };
    this.values.set(name, value);
    for (const server of this.cluster.servers()) this.send(server, value);
    return version;
  }

  /** Forgets `name` here and on every server in session; false when nothing was pushed under it. */
  drop(name: string): boolean {
    if (!this.values.delete(name)) return false;
    this.dropEverywhere(name);
    return true;
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /** Tells every server in session to drop `name`: what was pushed under it, and parts scattered under it (sg.scatter). */
  dropEverywhere(name: string): void {
    for (const server of this.cluster.servers()) server.link.send(toServer({ t: 'drop', name }));
  }

  /** A server joined: it gets every value, before any job. */
  joined(server: ServerSlot): void {
    for (const value of this.values.values()) {
      if (value.frames.every((frame) => frame.length <= server.maxFrame)) this.send(server, value);
    }
  }

  list(): Array<{ name: string; version: number; bytes: number }> {
    return [...this.values.values()].map(({ name, version, bytes }) => ({ name, version, bytes }));
  }

  private send(server: ServerSlot, { name, version, plain, frames }: SharedValue): void {
    server.link.send(toServer({ t: 'put', name, version, plain }, ...(frames as Frames)));
  }
}
