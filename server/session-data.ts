/**
 * The data sessions keep on this server's workers: values pushed to every worker (shared-data.ts)
 * and parts of scattered arrays (scattered-data.ts), both kept per controller link so that a
 * session's end, or a worker coming up or going, is one call here.
 */
import { toController, toWorker, type ControllerToServer, type Frames, type LinkMessage, type ServerToController, type ServerToWorker } from '../protocol/index.js';
import { ScatteredData } from './scattered-data.js';
import { SharedData } from './shared-data.js';

export interface SessionDataLinks {
  toWorker(message: Frames): void;
  toEveryWorker(tag: string, head: ServerToWorker, ...rest: Frames): void;
  toController(tag: string, message: LinkMessage<ServerToController>): void;
  /** Workers up now. */
  workers(): number[];
}

type DataHead = Extract<ControllerToServer, { t: 'put' | 'drop' | 'scatter' | 'collect' }>;

export class SessionData {
  private readonly shared: SharedData;
  private readonly scattered: ScatteredData;

  constructor(private readonly links: SessionDataLinks) {
    this.shared = new SharedData((tag, head, rest, w) => {
      if (w !== undefined) links.toWorker(toWorker(w, tag, head, ...rest));
      else links.toEveryWorker(tag, head, ...rest);
    });
    this.scattered = new ScatteredData({
      toWorker: (w, tag, head, rest) => links.toWorker(toWorker(w, tag, head, ...rest)),
      toController: (tag, head, rest) => links.toController(tag, toController(head, ...rest)),
      workers: links.workers,
    });
  }

  /** What the controller on link `tag` asked: keep a value or parts, drop a name, collect parts back. */
  handle(tag: string, head: DataHead, message: Buffer[]): void {
    switch (head.t) {
      case 'put':
        return this.shared.put(tag, head, message.slice(1));
      case 'drop':
        if (this.scattered.drop(tag, head.name)) this.links.toEveryWorker(tag, { t: 'drop', name: head.name });
        return this.shared.drop(tag, head.name);
      case 'scatter':
        return this.scattered.scatter(tag, head, message.slice(1));
      case 'collect':
        return this.scattered.collect(tag, head.id, String(head.name), Number(head.version));
    }
  }

  /** A worker sent back its part for a collect. */
  collected(w: number, id: number, plain: boolean, missing: boolean, frames: Buffer[]): void {
    this.scattered.collected(w, id, plain, missing, frames);
  }

  /** The session on link `tag` ended: what it kept goes. */
  forget(tag: string): void {
    this.shared.forget(tag);
    this.scattered.forget(tag);
  }

  /** A worker came up: it gets every pushed value, and any part waiting for a holder. */
  workerUp(w: number): void {
    this.shared.workerUp(w);
    this.scattered.workerUp();
  }

  /** A worker went: its parts wait for the next worker up. */
  workerDown(w: number): void {
    this.scattered.workerDown(w);
  }
}
