/**
 * ZeroMQ v6 allows one send in progress per socket; an Outbox queues frames and sends them in
 * order, so callers can post without awaiting and without tripping EBUSY.
 */
import type * as zmq from 'zeromq';
import type { Frames } from './messages.js';

export type SendError = (error: Error, frames: Frames) => void;

export class Outbox {
  private queue: Frames[] = [];
  private sending = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly socket: zmq.Writable & zmq.Socket,
    private readonly onError: SendError = () => {},
  ) {}

  post(message: Frames): void {
    this.queue.push(message);
    if (!this.sending) void this.drain();
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Resolves once everything posted so far has been handed to ZeroMQ. */
  flushed(): Promise<void> {
    if (!this.sending && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0) {
      const message = this.queue.shift()!;
      if (this.socket.closed) break;
      try {
        await this.socket.send(message);
      } catch (error) {
        this.onError(error as Error, message);
      }
    }
    this.queue.length = 0;
    this.sending = false;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }
}

/** Reads messages until the socket closes; a handler that throws is reported, not fatal. */
export async function receiveLoop(socket: zmq.Readable & zmq.Socket, handle: (frames: Buffer[]) => void, onHandlerError: (error: unknown, frames: Buffer[]) => void): Promise<void> {
  try {
    for await (const message of socket) {
      try {
        handle(message);
      } catch (error) {
        onHandlerError(error, message);
      }
    }
  } catch (error) {
    if (!socket.closed) throw error;
  }
}

/** Socket options every link uses: no lingering on close, bounded message size. */
export const MAX_MESSAGE_BYTES = 1024 * 1024 * 1024;

export function linkOptions<T extends object>(extra: T): T & { linger: number; maxMessageSize: number } {
  return { linger: 0, maxMessageSize: MAX_MESSAGE_BYTES, ...extra };
}

export { ipcEndpoint } from './ipc-endpoint.js';
