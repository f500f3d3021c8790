/**
 * The stdin channel: input_request out, input_reply in. Like ipykernel, a reply is matched to the
 * request outstanding on the replying client's stdin socket, not by its parent header: the
 * classic Notebook and jupyter_client's `input()` send input_reply with an empty parent header.
 * A reply that does name its request (JupyterLab does) must name an outstanding one.
 */
import type { KernelMessage } from '@jupyterlab/services';
import type { Logger } from 'pino';
import type { InputAnswer } from './executor.js';
import type { KernelSockets } from './sockets.js';
import { encode, newMessage, type Envelope, type Signer } from './wire.js';

interface PendingInput {
  msgId: string;
  /** The execute request the input belongs to. */
  executeId: string;
  /** The client's ZeroMQ identity (its shell and stdin sockets share it). */
  identity: string;
  answer: (answer: InputAnswer) => void;
}

const identityOf = (identities: readonly Buffer[]): string => identities.map((frame) => frame.toString('hex')).join('/');

export class InputRequests {
  private readonly pending: PendingInput[] = [];

  constructor(
    private readonly sockets: KernelSockets,
    private readonly signer: Signer,
    private readonly session: string,
    private readonly log: Logger,
  ) {}

  /** Sends an input_request to the client that sent this execute request. */
  ask(execute: Envelope<KernelMessage.IExecuteRequestMsg>, prompt: string, password: boolean, answer: (answer: InputAnswer) => void): void {
    const message = newMessage<KernelMessage.IInputRequestMsg>({
      msgType: 'input_request',
      channel: 'stdin',
      content: { prompt, password },
      parent: execute.message.header,
      session: this.session,
    });
    this.pending.push({ msgId: message.header.msg_id, executeId: execute.message.header.msg_id, identity: identityOf(execute.identities), answer });
    this.sockets.send('stdin', encode(this.signer, message, execute.identities));
  }

  receive({ identities, message }: Envelope): void {
    if (message.header.msg_type !== 'input_reply') return;
    const parentId = (message.parent_header as Partial<KernelMessage.IHeader>).msg_id;
    const identity = identityOf(identities);
    const index = parentId ? this.pending.findIndex((input) => input.msgId === parentId) : this.pending.findIndex((input) => input.identity === identity);
    if (index < 0) {
      this.log.warn({ parentId, outstanding: this.pending.length }, 'input_reply answers no outstanding input_request: ignored');
      return;
    }
    const [input] = this.pending.splice(index, 1);
    const content = message.content as Partial<KernelMessage.IInputReply> & { status?: string };
    // jupyter_client's input() sends just { value }, with no status
    const failed = content.status !== undefined && content.status !== 'ok';
    input!.answer(failed ? { error: `input failed: ${content.status}` } : { value: String(content.value ?? '') });
  }

  /** Fails the input requests an execute request left unanswered (it ended, or was interrupted). */
  cancel(executeId: string): void {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const input = this.pending[i]!;
      if (input.executeId !== executeId) continue;
      this.pending.splice(i, 1);
      input.answer({ error: 'input() was cancelled: its cell ended before an answer came' });
    }
  }
}
