/** Requests to the controller (define, connect, command) and their replies, matched by id. */
import { frames, readJson, type CallerToController, type ControllerToCaller, type Frames, type Outbox } from '../protocol/index.js';

type Request = Extract<CallerToController, { id: number }>;

export class Requests {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void; whole?: boolean }>();

  constructor(private readonly outbox: Outbox) {}

  get size(): number {
    return this.waiting.size;
  }

  /** Sends `head` (its id filled in) with `rest`; resolves with the reply's value. */
  send(head: Request, ...rest: Frames): Promise<unknown> {
    return this.sendFor(false, head, ...rest);
  }

  /** As send, but resolves with the reply's frames after its head (a reply carrying binary frames: sg.gather's). */
  sendForFrames(head: Request, ...rest: Frames): Promise<Buffer[]> {
    return this.sendFor(true, head, ...rest) as Promise<Buffer[]>;
  }

  private sendFor(whole: boolean, head: Request, ...rest: Frames): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, whole });
      this.outbox.post(frames({ ...head, id }, ...rest));
    });
  }

  /** [head, value]: the value as JSON, or an empty frame for none. */
  replied(head: Extract<ControllerToCaller, { t: 'reply' }>, message: Buffer[]): void {
    const waiter = this.waiting.get(head.id);
    if (!waiter) return;
    this.waiting.delete(head.id);
    if (!head.ok) return waiter.reject(new Error(head.error));
    if (waiter.whole) return waiter.resolve(message.slice(1));
    try {
      waiter.resolve(message[1]?.length ? readJson(message[1], 'reply value') : undefined);
    } catch (error) {
      waiter.reject(error as Error);
    }
  }

  /** Every request still waiting fails with `error`. */
  failAll(error: Error): void {
    for (const { reject } of this.waiting.values()) reject(error);
    this.waiting.clear();
  }
}
