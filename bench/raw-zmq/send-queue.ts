/** zeromq v6 allows one send in flight per socket: this queues messages and sends them in order. */
import type * as zmq from 'zeromq';

export class SendQueue {
  private readonly queue: Array<Array<string | Buffer | Uint8Array>> = [];
  private sending = false;

  constructor(private readonly socket: zmq.Writable & zmq.Socket) {}

  post(message: Array<string | Buffer | Uint8Array>): void {
    this.queue.push(message);
    if (!this.sending) void this.drain();
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0 && !this.socket.closed) await this.socket.send(this.queue.shift()!);
    this.sending = false;
  }
}
