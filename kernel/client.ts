/**
 * A Jupyter client over ZeroMQ, as jupyter_client is one: used by the headless notebook runner
 * and by tests that talk to the kernel without a Jupyter server.
 */
import type { KernelMessage } from '@jupyterlab/services';
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import { Outbox, receiveLoop } from '../protocol/transport.js';
import { endpoint, type ConnectionInfo } from './connection.js';
import { decode, encode, newMessage, Signer, type Frame } from './wire.js';

type ClientChannel = 'shell' | 'control' | 'stdin';
type Listener = (message: KernelMessage.IMessage) => void;

export class KernelTimeoutError extends Error {
  override name = 'KernelTimeoutError';
}

export interface ExecuteOptions {
  timeoutMs?: number;
  allowStdin?: boolean;
  stopOnError?: boolean;
  /** Every IOPub message parented to this request, as it arrives. */
  onIOPub?: Listener;
}

export interface Executed {
  reply: KernelMessage.IExecuteReplyMsg;
  iopub: KernelMessage.IIOPubMessage[];
}

export class KernelClient {
  readonly session = randomUUID();
  private readonly signer: Signer;
  private readonly sockets: Record<ClientChannel, zmq.Dealer>;
  private readonly iopubSocket = new zmq.Subscriber({ linger: 0 });
  private readonly outboxes: Record<ClientChannel, Outbox>;
  private readonly listeners = new Set<{ channel: KernelMessage.Channel; listener: Listener }>();

  /** Answers input_request messages (an execute with allowStdin). */
  onInput?: (request: KernelMessage.IInputRequestMsg) => string | Promise<string>;

  private constructor(info: ConnectionInfo) {
    this.signer = new Signer(info.key, info.signature_scheme);
    // shell and stdin share one identity: the kernel routes input_request by the shell request's identity
    const routingId = this.session;
    this.sockets = {
      shell: new zmq.Dealer({ routingId, linger: 0 }),
      control: new zmq.Dealer({ routingId, linger: 0 }),
      stdin: new zmq.Dealer({ routingId, linger: 0 }),
    };
    this.outboxes = {
      shell: new Outbox(this.sockets.shell),
      control: new Outbox(this.sockets.control),
      stdin: new Outbox(this.sockets.stdin),
    };
  }

  static connect(info: ConnectionInfo): KernelClient {
    const client = new KernelClient(info);
    client.iopubSocket.subscribe();
    client.iopubSocket.connect(endpoint(info, 'iopub'));
    void receiveLoop(
      client.iopubSocket,
      (frames) => client.receive('iopub', frames),
      () => {},
    );
    for (const channel of ['shell', 'control', 'stdin'] as const) {
      client.sockets[channel].connect(endpoint(info, channel));
      void receiveLoop(
        client.sockets[channel],
        (frames) => client.receive(channel, frames),
        () => {},
      );
    }
    client.on('stdin', (message) => void client.answerInput(message));
    return client;
  }

  on(channel: KernelMessage.Channel, listener: Listener): () => void {
    const entry = { channel, listener };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  send<M extends KernelMessage.IMessage>(channel: ClientChannel, msgType: M['header']['msg_type'], content: M['content']): M {
    const message = newMessage<M>({ msgType, channel: channel as M['channel'], content, session: this.session });
    this.sendFrames(channel, encode(this.signer, message));
    return message;
  }

  /** Sends frames as they are (tests use it for badly signed messages). */
  sendFrames(channel: ClientChannel, frames: Frame[]): void {
    this.outboxes[channel].post(frames);
  }

  /** Sends a request and resolves with its reply. */
  async request<R extends KernelMessage.IMessage>(channel: 'shell' | 'control', msgType: KernelMessage.MessageType, content: object, timeoutMs = 30_000): Promise<R> {
    let requestId = '';
    const reply = this.next<R>(channel, (message) => parentId(message) === requestId, timeoutMs, `${msgType} reply`);
    requestId = this.send(channel, msgType, content as never).header.msg_id;
    return reply;
  }

  /**
   * Waits until the kernel answers on shell AND its IOPub messages reach us (a SUB socket
   * misses what was published before it connected), by repeating kernel_info_request.
   */
  async waitForReady(timeoutMs = 30_000): Promise<KernelMessage.IInfoReplyMsg> {
    const deadline = Date.now() + timeoutMs;
    const sent = new Set<string>();
    while (Date.now() < deadline) {
      const published = this.next('iopub', (message) => sent.has(parentId(message)), Math.min(500, deadline - Date.now()), 'iopub');
      sent.add(this.send('shell', 'kernel_info_request', {}).header.msg_id);
      if (
        await published.then(
          () => true,
          () => false,
        )
      ) {
        return this.request<KernelMessage.IInfoReplyMsg>('shell', 'kernel_info_request', {}, Math.max(1, deadline - Date.now()));
      }
    }
    throw new KernelTimeoutError(`the kernel did not answer within ${timeoutMs} ms`);
  }

  /** Runs code; resolves once both the reply and the request's idle status have arrived. */
  async execute(code: string, options: ExecuteOptions = {}): Promise<Executed> {
    const { timeoutMs = 600_000, allowStdin = false, stopOnError = true, onIOPub } = options;
    const iopub: KernelMessage.IIOPubMessage[] = [];
    let requestId = '';
    const stop = this.on('iopub', (message) => {
      if (parentId(message) !== requestId) return;
      iopub.push(message as KernelMessage.IIOPubMessage);
      onIOPub?.(message);
    });
    try {
      const idle = this.next('iopub', (m) => parentId(m) === requestId && isIdle(m), timeoutMs, 'execution (idle)');
      const reply = this.next<KernelMessage.IExecuteReplyMsg>('shell', (m) => parentId(m) === requestId, timeoutMs, 'execute_reply');
      requestId = this.send<KernelMessage.IExecuteRequestMsg>('shell', 'execute_request', {
        code,
        silent: false,
        store_history: true,
        user_expressions: {},
        allow_stdin: allowStdin,
        stop_on_error: stopOnError,
      }).header.msg_id;
      const [replyMessage] = await Promise.all([reply, idle]);
      return { reply: replyMessage, iopub };
    } finally {
      stop();
    }
  }

  /** The next message on a channel that matches, or a KernelTimeoutError. */
  next<M extends KernelMessage.IMessage = KernelMessage.IMessage>(
    channel: KernelMessage.Channel,
    matches: (message: KernelMessage.IMessage) => boolean,
    timeoutMs: number,
    what = 'message',
  ): Promise<M> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new KernelTimeoutError(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const stop = this.on(channel, (message) => {
        if (!matches(message)) return;
        clearTimeout(timer);
        stop();
        resolve(message as M);
      });
    });
  }

  close(): void {
    for (const socket of [...Object.values(this.sockets), this.iopubSocket]) socket.close();
  }

  private receive(channel: KernelMessage.Channel, frames: Buffer[]): void {
    let message: KernelMessage.IMessage;
    try {
      message = decode(this.signer, frames, channel).message;
    } catch {
      return; // not from our kernel, or corrupted: ignored as the kernel ignores such messages
    }
    for (const entry of [...this.listeners]) if (entry.channel === channel) entry.listener(message);
  }

  private async answerInput(message: KernelMessage.IMessage): Promise<void> {
    if (message.header.msg_type !== 'input_request') return;
    const request = message as KernelMessage.IInputRequestMsg;
    const value = this.onInput ? await this.onInput(request) : '';
    const reply = newMessage<KernelMessage.IInputReplyMsg>({
      msgType: 'input_reply',
      channel: 'stdin',
      content: { status: 'ok', value },
      parent: request.header,
      session: this.session,
    });
    this.sendFrames('stdin', encode(this.signer, reply));
  }
}

export function parentId(message: KernelMessage.IMessage): string {
  return (message.parent_header as Partial<KernelMessage.IHeader>).msg_id ?? '';
}

function isIdle(message: KernelMessage.IMessage): boolean {
  return message.header.msg_type === 'status' && (message as KernelMessage.IStatusMsg).content.execution_state === 'idle';
}
