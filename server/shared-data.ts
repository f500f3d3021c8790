/**
 * Values controllers pushed to every worker (sg.push), kept per session: each crossed the link from
 * its controller once, and goes to every worker now and to each worker that comes up later (a
 * refresh, a crash, a pool that grows), until dropped or its session ends.
 */
import type { Frames, ServerToWorker } from '../protocol/index.js';

interface Kept {
  head: Extract<ServerToWorker, { t: 'put' }>;
  frames: Buffer[];
}

export class SharedData {
  /** By controller link tag, then name. */
  private readonly bySession = new Map<string, Map<string, Kept>>();

  constructor(private readonly toWorkers: (tag: string, head: ServerToWorker, rest: Frames, w?: number) => void) {}

  /** Bytes kept, over every session. */
  get bytes(): number {
    let bytes = 0;
    for (const values of this.bySession.values()) for (const { frames } of values.values()) for (const frame of frames) bytes += frame.length;
    return bytes;
  }

  put(tag: string, head: Extract<ServerToWorker, { t: 'put' }>, frames: Buffer[]): void {
    let values = this.bySession.get(tag);
    if (!values) this.bySession.set(tag, (values = new Map()));
    const kept = { head: { t: 'put' as const, name: String(head.name), version: Number(head.version), plain: head.plain === true }, frames };
    values.set(kept.head.name, kept);
    this.toWorkers(tag, kept.head, frames);
  }

  drop(tag: string, name: string): void {
    if (this.bySession.get(tag)?.delete(name)) this.toWorkers(tag, { t: 'drop', name }, []);
  }

  /** The session ended: what it pushed goes (its workers forget it with the rest of the session). */
  forget(tag: string): void {
    this.bySession.delete(tag);
  }

  /** A worker came up: it gets every value kept, before any job. */
  workerUp(w: number): void {
    for (const [tag, values] of this.bySession) for (const { head, frames } of values.values()) this.toWorkers(tag, head, frames, w);
  }
}
