/**
 * The kernel: receives and authenticates messages, runs shell requests one at a time (control
 * requests at once), wraps each shell request in busy/idle, and routes cell output to IOPub
 * parented to the request that produced it (or, for late async output, the last execute request).
 */
import type { KernelMessage } from '@jupyterlab/services';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ConnectionInfo } from './connection.js';
import { Executor, type InputAnswer } from './executor.js';
import { handlers } from './handlers.js';
import { History } from './history.js';
import { IOPub } from './iopub.js';
import { endDescendants } from './process-tree.js';
import { KernelSockets, type RequestChannel } from './sockets.js';
import { InputRequests } from './stdin.js';
import { decode, encode, newMessage, SignatureError, Signer, type Envelope } from './wire.js';

export interface Request<M extends KernelMessage.IMessage = KernelMessage.IMessage> extends Envelope<M> {
  channel: 'shell' | 'control';
}

interface Execution {
  request: Request<KernelMessage.IExecuteRequestMsg>;
  allowStdin: boolean;
}

export class Kernel {
  readonly session = randomUUID();
  executionCount = 0;
  readonly history = new History();
  /** Set when an execute fails with stop_on_error: the execute requests queued behind it are aborted. */
  abortingExecutes = false;
  readonly iopub: IOPub;
  readonly exited: Promise<void>;

  private readonly shellQueue: Request[] = [];
  private shellBusy = false;
  private execution?: Execution;
  private lastExecuteHeader?: KernelMessage.IHeader;
  private readonly inputs: InputRequests;
  private shuttingDown?: Promise<void>;
  private markExited!: () => void;

  private constructor(
    private readonly sockets: KernelSockets,
    private readonly signer: Signer,
    readonly executor: Executor,
    readonly log: Logger,
  ) {
    this.iopub = new IOPub(sockets, signer, this.session);
    this.inputs = new InputRequests(sockets, signer, this.session, log);
    this.exited = new Promise((resolve) => (this.markExited = resolve));
  }

  static async start(options: { info: ConnectionInfo; cwd: string; log: Logger }): Promise<Kernel> {
    const { info, cwd, log } = options;
    const signer = new Signer(info.key, info.signature_scheme);
    const sockets = await KernelSockets.bind(info, (error) => log.warn({ err: error }, 'send failed'));
    const executor = new Executor(cwd, log);
    const kernel = new Kernel(sockets, signer, executor, log);
    kernel.iopub.publish<KernelMessage.IStatusMsg>('status', { execution_state: 'starting' }, undefined);
    executor.on('stream', (name, text) => kernel.iopub.stream(name, text, kernel.outputParent()));
    executor.on('display', (message) => {
      if ('clear' in message) return kernel.iopub.publish<KernelMessage.IClearOutputMsg>('clear_output', { wait: message.wait }, kernel.outputParent());
      const { data, metadata, displayId, update } = message;
      const content = { data, metadata, transient: { display_id: displayId } };
      if (update) kernel.iopub.publish<KernelMessage.IUpdateDisplayDataMsg>('update_display_data', content, kernel.outputParent());
      else kernel.iopub.publish<KernelMessage.IDisplayDataMsg>('display_data', content, kernel.outputParent());
    });
    executor.on('input', (prompt, password, answer) => kernel.requestInput(prompt, password, answer));
    await executor.start();
    for (const channel of ['shell', 'control', 'stdin'] as const) {
      sockets.listen(
        channel,
        (frames) => kernel.receive(channel, frames),
        (error) => log.error({ err: error, channel }, 'receive failed'),
      );
    }
    log.info({ info: { ...info, key: '…' } }, 'kernel started');
    return kernel;
  }

  reply<M extends KernelMessage.IMessage>(request: Request, content: M['content']): void {
    const msgType = request.message.header.msg_type.replace(/_request$/, '_reply') as M['header']['msg_type'];
    const message = newMessage<M>({ msgType, channel: request.channel as M['channel'], content, parent: request.message.header, session: this.session });
    this.sockets.send(request.channel, encode(this.signer, message, request.identities));
  }

  /** Runs one execute request as the current one: its outputs and input requests are parented to it. */
  async runExecution<T>(request: Request<KernelMessage.IExecuteRequestMsg>, run: () => Promise<T>): Promise<T> {
    this.execution = { request, allowStdin: !!request.message.content.allow_stdin };
    this.lastExecuteHeader = request.message.header;
    try {
      return await run();
    } finally {
      this.execution = undefined;
      this.inputs.cancel(request.message.header.msg_id);
    }
  }

  shutdown(): Promise<void> {
    this.shuttingDown ??= (async () => {
      await this.executor.stop().catch((error) => this.log.error({ err: error }, 'stopping the cell worker failed'));
      await endDescendants().catch((error) => this.log.error({ err: error }, 'ending child processes failed'));
      this.iopub.flush();
      await this.sockets.close();
      this.markExited();
    })();
    return this.shuttingDown;
  }

  private outputParent(): KernelMessage.IHeader | undefined {
    return this.execution?.request.message.header ?? this.lastExecuteHeader;
  }

  private receive(channel: RequestChannel, frames: Buffer[]): void {
    if (this.shuttingDown) return;
    let envelope: Envelope;
    try {
      envelope = decode(this.signer, frames, channel);
    } catch (error) {
      this.log.warn({ channel, reason: (error as Error).message, signature: error instanceof SignatureError }, 'message dropped');
      return;
    }
    if (channel === 'stdin') return this.inputs.receive(envelope);
    const request: Request = { ...envelope, channel };
    if (channel === 'control') {
      void this.dispatch(request);
    } else {
      this.shellQueue.push(request);
      void this.drainShell();
    }
  }

  private async drainShell(): Promise<void> {
    if (this.shellBusy) return;
    this.shellBusy = true;
    while (this.shellQueue.length > 0) {
      await this.dispatch(this.shellQueue.shift()!);
      if (this.shellQueue.length === 0) this.abortingExecutes = false;
    }
    this.shellBusy = false;
  }

  private async dispatch(request: Request): Promise<void> {
    const { msg_type } = request.message.header;
    const handler = handlers[msg_type];
    if (!handler) {
      this.log.warn({ msg_type, channel: request.channel }, 'unknown message type');
      return;
    }
    const parent = request.message.header;
    const status = (execution_state: 'busy' | 'idle') => this.iopub.publish<KernelMessage.IStatusMsg>('status', { execution_state }, parent);
    status('busy');
    try {
      await handler(this, request);
    } catch (error) {
      this.log.error({ err: error, msg_type }, 'handler failed');
    } finally {
      status('idle');
    }
  }

  private requestInput(prompt: string, password: boolean, answer: (answer: InputAnswer) => void): void {
    const execution = this.execution;
    if (!execution?.allowStdin) {
      return answer({ error: 'input() is not available: this frontend does not accept input requests (allow_stdin is false)' });
    }
    this.iopub.flush();
    this.inputs.ask(execution.request, prompt, password, answer);
  }
}
