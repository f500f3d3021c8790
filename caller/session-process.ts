/**
 * A session's controller as its caller holds it (in place of a forked child): the controller is no
 * child of the caller's (it must outlive it), so its exit is seen by looking for its process, not
 * by a child's exit event. It has no IPC channel: the caller lets go of it by detaching.
 */
import { EventEmitter } from 'node:events';
import { stateProcessAlive, type SessionState } from '../protocol/session-dir.js';

/** How often the controller's process is looked for. */
const WATCH_MS = 100;

export class SessionProcess extends EventEmitter {
  readonly connected = false;
  readonly channel = null;
  private readonly watch: NodeJS.Timeout;

  constructor(private readonly identity: Pick<SessionState, 'pid' | 'startTicks' | 'pidNamespace'>) {
    super();
    // Unref'd: waiting for the controller's messages is what holds a busy caller's process.
    this.watch = setInterval(() => {
      if (!this.alive) this.ended();
    }, WATCH_MS).unref();
  }

  get pid(): number {
    return this.identity.pid;
  }

  get alive(): boolean {
    return stateProcessAlive(this.identity);
  }

  /** Stops watching: detached, the caller no longer cares. */
  stop(): void {
    clearInterval(this.watch);
  }

  disconnect(): void {}
  ref(): void {}
  unref(): void {}

  private ended(): void {
    this.stop();
    this.emit('exit', null, null);
  }
}
