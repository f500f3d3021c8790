/**
 * The caller's receive loop, which keeps Node's event loop alive only while the caller waits for
 * something. A ZeroMQ socket waiting to receive holds a libuv handle that keeps the process
 * running, and zeromq.js cannot unref it: a script that forgot close() would never exit. So while
 * nothing is outstanding the socket is not waited on; it is read without blocking on a timer that
 * does not hold the process, and messages that come meanwhile (events, output) wait that long.
 */
import type * as zmq from 'zeromq';

/** How often an idle caller looks for messages. */
const IDLE_POLL_MS = 20;
/**
 * How long a busy caller waits on the socket before it looks again whether it is still busy: it
 * can turn idle without a message (a listener removed), and a pending receive cannot be called off.
 */
const BUSY_RECHECK_MS = 1000;

export interface IdleReceiverHooks {
  /** Whether the caller waits for anything (jobs, replies, start-up): then the socket is waited on. */
  busy(): boolean;
  /** Called when the caller turns busy (true) or idle (false): hold, or let go of, other handles. */
  keepAlive(on: boolean): void;
  handle(message: Buffer[]): void;
  onHandlerError(error: unknown, message: Buffer[]): void;
}

export class IdleAwareReceiver {
  private blocking?: boolean;
  private tick?: { timer: NodeJS.Timeout; resolve(): void };

  constructor(
    private readonly socket: zmq.Readable & zmq.Socket,
    private readonly hooks: IdleReceiverHooks,
  ) {}

  /** Reads until the socket closes. */
  async run(): Promise<void> {
    try {
      while (!this.socket.closed) {
        const message = this.hooks.busy() ? await this.receiveBusy() : await this.receiveIdle();
        if (!message) continue;
        try {
          this.hooks.handle(message);
        } catch (error) {
          this.hooks.onHandlerError(error, message);
        }
      }
    } catch (error) {
      if (!this.socket.closed) throw error;
    }
  }

  /** The caller has turned busy: stop idling and wait on the socket. */
  wake(): void {
    if (!this.tick) return;
    clearTimeout(this.tick.timer);
    this.tick.resolve();
    this.tick = undefined;
  }

  /** The next message, or nothing when none came within BUSY_RECHECK_MS. */
  private async receiveBusy(): Promise<Buffer[] | undefined> {
    if (this.blocking !== true) {
      this.blocking = true;
      this.socket.receiveTimeout = BUSY_RECHECK_MS;
      this.hooks.keepAlive(true);
    }
    try {
      return await this.socket.receive();
    } catch (error) {
      if ((error as { code?: string }).code !== 'EAGAIN' || this.socket.closed) throw error;
      return undefined;
    }
  }

  /** A message if one is there; else waits for the next idle tick (or a wake) and returns nothing. */
  private async receiveIdle(): Promise<Buffer[] | undefined> {
    if (this.blocking !== false) {
      this.blocking = false;
      this.socket.receiveTimeout = 0; // a receive then answers at once, with EAGAIN when there is nothing
      this.hooks.keepAlive(false);
    }
    try {
      return await this.socket.receive();
    } catch (error) {
      if ((error as { code?: string }).code !== 'EAGAIN' || this.socket.closed) throw error;
    }
    // Turned busy while that receive was answered (a wake with no tick to end): wait on the socket now.
    if (this.hooks.busy()) return undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.tick = undefined;
        resolve();
      }, IDLE_POLL_MS).unref();
      this.tick = { timer, resolve };
    });
    return undefined;
  }
}
