/**
 * Publishing on IOPub. Stream text is coalesced (chatty cells would otherwise send a message per
 * write) and always flushed before any other message, so outputs keep their order.
 */
import type { KernelMessage } from '@jupyterlab/services';
import type { KernelSockets } from './sockets.js';
import { encode, newMessage, type Signer } from './wire.js';
import type { StreamName } from './worker-messages.js';

type Parent = KernelMessage.IHeader | undefined;

export class IOPub {
  private pending?: { name: StreamName; text: string; parent: Parent };
  private scheduled = false;

  constructor(
    private readonly sockets: KernelSockets,
    private readonly signer: Signer,
    private readonly session: string,
  ) {}

  publish<M extends KernelMessage.IIOPubMessage>(msgType: M['header']['msg_type'], content: M['content'], parent: Parent): void {
    this.flush();
    this.send(newMessage<M>({ msgType, channel: 'iopub', content, parent, session: this.session }));
  }

  stream(name: StreamName, text: string, parent: Parent): void {
    if (this.pending && (this.pending.name !== name || this.pending.parent !== parent)) this.flush();
    if (this.pending) this.pending.text += text;
    else this.pending = { name, text, parent };
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return;
    const { name, text, parent } = pending;
    this.send(newMessage<KernelMessage.IStreamMsg>({ msgType: 'stream', channel: 'iopub', content: { name, text }, parent, session: this.session }));
  }

  private send(message: KernelMessage.IMessage): void {
    this.sockets.send('iopub', encode(this.signer, message, [`kernel.${this.session}.${message.header.msg_type}`]));
  }
}
