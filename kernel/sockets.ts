/** The kernel's five ZeroMQ sockets, bound as a connection file says. */
import * as zmq from 'zeromq';
import { MAX_MESSAGE_BYTES, Outbox, receiveLoop } from '../protocol/transport.js';
import { endpoint, type ConnectionInfo } from './connection.js';
import type { Frame } from './wire.js';

export type RequestChannel = 'shell' | 'control' | 'stdin';
export type SendChannel = RequestChannel | 'iopub';

/** Long enough for a shutdown_reply and the last outputs to leave after close(). */
const LINGER_MS = 1000;
/** Limit on what iopub and heartbeat peers may send us: a bigger message drops the connection, not the kernel. */
const HEARTBEAT_MAX_BYTES = 64 * 1024;

export class KernelSockets {
  private readonly outboxes: Record<SendChannel, Outbox>;

  private constructor(
    private readonly routers: Record<RequestChannel, zmq.Router>,
    private readonly iopub: zmq.Publisher,
    private readonly hb: zmq.Reply,
    onSendError: (error: Error) => void,
  ) {
    this.outboxes = {
      shell: new Outbox(routers.shell, onSendError),
      control: new Outbox(routers.control, onSendError),
      stdin: new Outbox(routers.stdin, onSendError),
      iopub: new Outbox(iopub, onSendError),
    };
  }

  static async bind(info: ConnectionInfo, onSendError: (error: Error) => void): Promise<KernelSockets> {
    const routers = {
      shell: new zmq.Router({ linger: LINGER_MS, maxMessageSize: MAX_MESSAGE_BYTES }),
      control: new zmq.Router({ linger: LINGER_MS, maxMessageSize: MAX_MESSAGE_BYTES }),
      stdin: new zmq.Router({ linger: LINGER_MS, maxMessageSize: MAX_MESSAGE_BYTES }),
    };
    // iopub only sends (subscriptions are tiny); heartbeats are short pings echoed back.
    const iopub = new zmq.Publisher({ linger: LINGER_MS, maxMessageSize: HEARTBEAT_MAX_BYTES });
    const hb = new zmq.Reply({ linger: 0, maxMessageSize: HEARTBEAT_MAX_BYTES });
    await Promise.all([
      routers.shell.bind(endpoint(info, 'shell')),
      routers.control.bind(endpoint(info, 'control')),
      routers.stdin.bind(endpoint(info, 'stdin')),
      iopub.bind(endpoint(info, 'iopub')),
      hb.bind(endpoint(info, 'hb')),
    ]);
    const sockets = new KernelSockets(routers, iopub, hb, onSendError);
    void sockets.echoHeartbeats();
    return sockets;
  }

  listen(channel: RequestChannel, onMessage: (frames: Buffer[]) => void, onError: (error: unknown) => void): void {
    receiveLoop(this.routers[channel], onMessage, onError).catch(onError);
  }

  send(channel: SendChannel, frames: Frame[]): void {
    this.outboxes[channel].post(frames);
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.outboxes).map((outbox) => outbox.flushed()));
    for (const socket of [...Object.values(this.routers), this.iopub, this.hb]) socket.close();
  }

  /** REP echo on the main thread; user code runs elsewhere, so a busy cell never stops the heartbeat. */
  private async echoHeartbeats(): Promise<void> {
    try {
      for await (const frames of this.hb) await this.hb.send(frames);
    } catch (error) {
      if (!this.hb.closed) throw error;
    }
  }
}
