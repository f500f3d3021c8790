/**
 * Arrays scattered over the workers (sg.scatter): the caller split one in as many parts as workers
 * are up; part i goes to the i-th worker (servers in the order they joined, then by w), which keeps
 * it as `shared[name]`. sg.gather asks every server in session for the parts its workers hold now
 * and answers the caller with them in order, or names the parts missing (their server left, or
 * their worker went and none has come up to take its part yet). Servers that join later get none.
 */
import { toServer, type Frames, type ScatterPart } from '../protocol/index.js';
import type { Cluster, ServerSlot } from './cluster.js';
import { frameLimitOf, megabytes } from './job-ledger.js';

interface Gathering {
  name: string;
  count: number;
  waiting: Set<ServerSlot>;
  got: Map<number, { plain: boolean; frames: Buffer[] }>;
  answer(error: string | undefined, parts?: ScatterPart[], frames?: Buffer[]): void;
}

export class ScatteredData {
  private readonly names = new Map<string, { version: number; count: number; bytes: number }>();
  private readonly gatherings = new Map<number, Gathering>();
  private nextGather = 1;

  constructor(private readonly cluster: Cluster) {}

  has(name: string): boolean {
    return this.names.has(name);
  }

  /** Sends part i of `parts` to the i-th worker up; throws, sending nothing, when the parts do not fit the workers or a server's frame limit. */
  scatter(name: string, parts: ScatterPart[], frames: Buffer[]): number {
    if (typeof name !== 'string' || name.length === 0 || !Array.isArray(parts) || parts.length === 0) throw new TypeError('scatter needs a name and at least one part');
    const workers = [...this.cluster.servers()].flatMap((server) => [...server.workers.values()].sort((a, b) => a.w - b.w));
    if (workers.length !== parts.length) throw new RangeError(`'${name}' was split in ${parts.length} parts but ${workers.length} workers are up now: scatter again`);
    let at = 0;
    const split = parts.map(([index, plain, count]) => {
      const own = frames.slice(at, at + count);
      at += count;
      if (!Number.isInteger(count) || count < 1 || own.length !== count) throw new TypeError(`part ${index} of '${name}' is malformed`);
      return { plain: plain === true, frames: own };
    });
    workers.forEach((slot, i) => {
      const largest = Math.max(...split[i]!.frames.map((frame) => frame.length));
      if (largest > slot.server.maxFrame) throw new RangeError(`part ${i} of '${name}' has a ${megabytes(largest)} frame; ${frameLimitOf(slot.server)}`);
    });
    const previous = this.names.get(name);
    // The old parts go everywhere first, also from a server with no worker up now (which gets no new part).
    if (previous) for (const server of this.cluster.servers()) server.link.send(toServer({ t: 'drop', name }));
    const version = (previous?.version ?? 0) + 1;
    this.names.set(name, { version, count: parts.length, bytes: frames.reduce((n, frame) => n + frame.length, 0) });
    workers.forEach((slot, i) => {
      const { plain, frames: own } = split[i]!;
      slot.server.link.send(toServer({ t: 'scatter', name, version, plain, w: slot.w, part: i, parts: parts.length }, ...(own as Frames)));
    });
    return version;
  }

  /** Forgets `name` (the servers drop its parts on the 'drop' SharedData sends); false when nothing was scattered under it. */
  drop(name: string): boolean {
    return this.names.delete(name);
  }

  /** Asks every server in session for its parts of `name`; `answer` gets them in order, or an error naming what is missing. */
  gather(name: string, answer: Gathering['answer']): void {
    const scattered = this.names.get(name);
    if (!scattered) return answer(`nothing was scattered as '${name}' (sg.scatter)`);
    const id = this.nextGather++;
    const gathering: Gathering = { name, count: scattered.count, waiting: new Set(this.cluster.servers()), got: new Map(), answer };
    this.gatherings.set(id, gathering);
    for (const server of gathering.waiting) server.link.send(toServer({ t: 'collect', id, name, version: scattered.version }));
    this.finishIfDone(id, gathering);
  }

  /** A server's answer to collect `id`: [head, ...per part: text, ...binary frames]. */
  collected(server: ServerSlot, id: number, parts: ScatterPart[], frames: Buffer[]): void {
    const gathering = this.gatherings.get(id);
    if (!gathering?.waiting.delete(server)) return;
    let at = 0;
    for (const [index, plain, count] of Array.isArray(parts) ? parts : []) {
      const own = frames.slice(at, at + count);
      at += count;
      if (Number.isInteger(index) && index >= 0 && index < gathering.count && own.length === count) gathering.got.set(index, { plain: plain === true, frames: own });
    }
    this.finishIfDone(id, gathering);
  }

  /** A server left: its parts are lost; gatherings stop waiting for it. */
  lost(server: ServerSlot): void {
    for (const [id, gathering] of this.gatherings) if (gathering.waiting.delete(server)) this.finishIfDone(id, gathering);
  }

  list(): Array<{ name: string; version: number; bytes: number; parts: number }> {
    return [...this.names].map(([name, { version, bytes, count }]) => ({ name, version, bytes, parts: count }));
  }

  private finishIfDone(id: number, gathering: Gathering): void {
    if (gathering.waiting.size > 0) return;
    this.gatherings.delete(id);
    const missing = Array.from({ length: gathering.count }, (_, i) => i).filter((i) => !gathering.got.has(i));
    if (missing.length > 0) {
      return gathering.answer(
        `gather('${gathering.name}'): part${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${gathering.count} missing (their server left, or their worker went and no worker has come up to take the part yet)`,
      );
    }
    const ordered = [...gathering.got].sort(([a], [b]) => a - b);
    gathering.answer(
      undefined,
      ordered.map(([index, { plain, frames }]) => [index, plain, frames.length]),
      ordered.flatMap(([, { frames }]) => frames),
    );
  }
}
