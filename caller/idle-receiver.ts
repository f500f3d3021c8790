/**
 * The caller's receive loop, which keeps Node's event loop alive only while the caller waits for
 * something. A ZeroMQ socket waiting to receive holds a libuv handle that keeps the process
 * running, and zeromq.js cannot unref it: a script that forgot close() would never exit. So once
 * nothing has been outstanding for a moment the socket is not waited on; it is read without
 * blocking on a timer that does not hold the process, and messages that come meanwhile (events,
 * output) wait that long. The moment matters: a caller that submits one job after another would
 * otherwise switch modes twice per round trip, on the round trip's own path.
 */
import type { ChildProcess } from 'node:child_process';
import type * as zmq from 'zeromq';

/** How often an idle caller looks for messages. */
const IDLE_POLL_MS = 20;
/**
 * How long the socket is waited on before the loop looks again whether the caller is still busy,
 * and so how long a caller stays ready after its last job before it turns idle: it can also turn
 * idle without a message (a listener removed), and a pending receive cannot be called off.
 */
const BUSY_RECHECK_MS = 50;

export interface IdleReceiverHooks {
  /** Whether the caller waits for anything (jobs, replies, start-up): then the socket is waited on. */
  busy(): boolean;
  /** Called when the caller turns busy (true) or idle (false): hold, or let go of, other handles. */
  keepAlive(on: boolean): void;
  handle(message: Buffer[]): void;
  onHandlerError(error: unknown, message: Buffer[]): void;
}

export class IdleAwareReceiver {
  /** Waiting on the socket (holding the process), or idle; neither before the first receive. */
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
        // Blocking, the loop turns idle only when a wait ran out with nothing to wait for.
        const message = this.blocking !== false || this.hooks.busy() ? await this.receiveBusy() : await this.receiveIdle();
        if (message === undefined) {
          if (this.blocking && !this.hooks.busy()) this.goIdle();
          continue;
        }
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

  /** The next message, or nothing when none came within BUSY_RECHECK_MS (or the socket closed meanwhile). */
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

  /** Nothing was outstanding for a whole wait: stop waiting on the socket, and let go of the process. */
  private goIdle(): void {
    this.blocking = false;
    this.socket.receiveTimeout = 0; // a receive then answers at once, with EAGAIN when there is nothing
    this.hooks.keepAlive(false);
  }

  /** A message if one is there; else waits for the next idle tick (or a wake) and returns nothing. */
  private async receiveIdle(): Promise<Buffer[] | undefined> {
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

/**
 * The controller process as the caller holds it: the child it forked, or a session's controller
 * it attached to (session-process.ts), which is no child of its and has no IPC channel.
 */
export type ControllerHandle = Pick<ChildProcess, 'pid' | 'connected' | 'disconnect' | 'ref' | 'unref' | 'channel'> & {
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
};

/** Holds (true) or lets go of (false) the process for the controller child and its IPC channel. */
export function holdChild(child: ControllerHandle, on: boolean): void {
  const channel = child.channel as { ref?(): void; unref?(): void } | null | undefined;
  if (on) {
    child.ref();
    channel?.ref?.();
  } else {
    child.unref();
    channel?.unref?.();
  }
}
