/**
 * Parts of arrays controllers scattered over the workers (sg.scatter), kept per session: each part
 * belongs to one worker; when that worker goes (refresh, crash, recycle) the part goes, as it was
 * scattered, to the next worker that comes up holding no part of that name, so it is not lost while
 * the server lives. sg.gather collects every part this server's workers hold now, as jobs left them.
 */
import type { ControllerToServer, Frames, ScatterPart, ServerToController, ServerToWorker } from '../protocol/index.js';

interface KeptPart {
  head: Extract<ServerToWorker, { t: 'put' }>;
  frames: Buffer[];
  /** The worker holding it; undefined while it waits for a worker to come up. */
  w: number | undefined;
}

interface Collect {
  tag: string;
  /** The controller's id for this gather. */
  id: number;
  /** By worker: the part index it was asked for. */
  waiting: Map<number, number>;
  got: Array<{ index: number; plain: boolean; frames: Buffer[] }>;
}

export interface ScatterLinks {
  toWorker(w: number, tag: string, head: ServerToWorker, rest: Frames): void;
  toController(tag: string, head: Extract<ServerToController, { t: 'collected' }>, rest: Frames): void;
  /** Workers up now. */
  workers(): number[];
}

export class ScatteredData {
  /** By controller link tag, then name: the parts by index. */
  private readonly bySession = new Map<string, Map<string, KeptPart[]>>();
  private readonly collects = new Map<number, Collect>();
  private nextCollect = 1;

  constructor(private readonly links: ScatterLinks) {}

  get bytes(): number {
    let bytes = 0;
    for (const names of this.bySession.values()) for (const parts of names.values()) for (const part of parts) for (const frame of part.frames) bytes += frame.length;
    return bytes;
  }

  /** A part for worker `head.w` (or the next worker up, when `w` is gone already). A new version of the name replaces the old parts here. */
  scatter(tag: string, head: Extract<ControllerToServer, { t: 'scatter' }>, frames: Buffer[]): void {
    let names = this.bySession.get(tag);
    if (!names) this.bySession.set(tag, (names = new Map()));
    const name = String(head.name);
    let parts = names.get(name);
    if (!parts || parts[0]?.head.version !== head.version) names.set(name, (parts = []));
    const kept: KeptPart = {
      head: { t: 'put', name, version: Number(head.version), plain: head.plain === true, part: Number(head.part), parts: Number(head.parts) },
      frames,
      w: undefined,
    };
    parts.push(kept);
    if (this.links.workers().includes(head.w)) this.give(tag, kept, head.w);
    else this.placeWaiting();
  }

  /** False when `tag` scattered nothing under `name`. */
  drop(tag: string, name: string): boolean {
    return this.bySession.get(tag)?.delete(name) === true;
  }

  forget(tag: string): void {
    this.bySession.delete(tag);
  }

  /** A worker came up: it takes, per name, one part waiting for a worker. */
  workerUp(): void {
    this.placeWaiting();
  }

  /** A worker went: its parts wait for the next worker up, and a gather waiting on it counts them missing. */
  workerDown(w: number): void {
    for (const names of this.bySession.values()) for (const parts of names.values()) for (const part of parts) if (part.w === w) part.w = undefined;
    for (const [cid, collect] of this.collects) if (collect.waiting.delete(w)) this.finishIfDone(cid, collect);
    this.placeWaiting(w);
  }

  /** sg.gather: asks each worker holding a part of `name` for it; answers the controller once all have. */
  collect(tag: string, id: number, name: string, version: number): void {
    const cid = this.nextCollect++;
    const collect: Collect = { tag, id, waiting: new Map(), got: [] };
    for (const part of this.bySession.get(tag)?.get(name) ?? []) {
      // Parts of an older version (kept while this server had no worker up to take a new one) are not asked for.
      if (part.w === undefined || part.head.version !== version) continue;
      collect.waiting.set(part.w, part.head.part!);
      this.links.toWorker(part.w, tag, { t: 'collect', id: cid, name }, []);
    }
    this.collects.set(cid, collect);
    this.finishIfDone(cid, collect);
  }

  /** A worker's answer to collect `id`: [text, ...binary frames], unless `missing`. */
  collected(w: number, id: number, plain: boolean, missing: boolean, frames: Buffer[]): void {
    const collect = this.collects.get(id);
    const index = collect?.waiting.get(w);
    if (!collect || index === undefined) return;
    collect.waiting.delete(w);
    if (!missing && frames.length > 0) collect.got.push({ index, plain, frames });
    this.finishIfDone(id, collect);
  }

  private finishIfDone(cid: number, collect: Collect): void {
    if (collect.waiting.size > 0) return;
    this.collects.delete(cid);
    const parts: ScatterPart[] = collect.got.map(({ index, plain, frames }) => [index, plain, frames.length]);
    this.links.toController(
      collect.tag,
      { t: 'collected', id: collect.id, parts },
      collect.got.flatMap(({ frames }) => frames),
    );
  }

  private give(tag: string, part: KeptPart, w: number): void {
    part.w = w;
    this.links.toWorker(w, tag, part.head, part.frames);
  }

  /** Each part waiting goes to a worker up that holds no part of its name. */
  private placeWaiting(going?: number): void {
    const up = this.links.workers().filter((w) => w !== going);
    for (const [tag, names] of this.bySession) {
      for (const parts of names.values()) {
        const waiting = parts.filter((part) => part.w === undefined);
        if (waiting.length === 0) continue;
        const free = up.filter((w) => !parts.some((part) => part.w === w));
        for (const part of waiting) {
          const w = free.shift();
          if (w === undefined) break;
          this.give(tag, part, w);
        }
      }
    }
  }
}
