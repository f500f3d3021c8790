/** Test helpers for talking to a kernel through @jupyterlab/services. */
import { after, before } from 'node:test';
import type { Kernel, KernelMessage } from '@jupyterlab/services';

import { startJupyterServer, type JupyterServer } from './jupyter-server.js';

export { waitUntil } from './helpers.js';

export interface ExecuteOptions {
  silent?: boolean;
  allowStdin?: boolean;
  onStdin?: (message: KernelMessage.IStdinMessage, future: Kernel.IShellFuture<KernelMessage.IExecuteRequestMsg, KernelMessage.IExecuteReplyMsg>) => void;
}

export interface Executed {
  reply: KernelMessage.IExecuteReplyMsg;
  /** The request's IOPub messages other than status. */
  iopub: KernelMessage.IIOPubMessage[];
}

export async function execute(kernel: Kernel.IKernelConnection, code: string, options: ExecuteOptions = {}): Promise<Executed> {
  const future = kernel.requestExecute({ code, silent: options.silent ?? false, allow_stdin: options.allowStdin ?? false, stop_on_error: true });
  const iopub: KernelMessage.IIOPubMessage[] = [];
  future.onIOPub = (message) => {
    if (message.header.msg_type !== 'status') iopub.push(message);
  };
  if (options.onStdin) future.onStdin = (message) => options.onStdin!(message, future);
  const reply = await future.done;
  return { reply, iopub };
}

export function outputsOf(iopub: KernelMessage.IIOPubMessage[], type: KernelMessage.IOPubMessageType): KernelMessage.IIOPubMessage[] {
  return iopub.filter((message) => message.header.msg_type === type);
}

export function streamText(iopub: KernelMessage.IIOPubMessage[], name: 'stdout' | 'stderr'): string {
  return (outputsOf(iopub, 'stream') as KernelMessage.IStreamMsg[])
    .filter((message) => message.content.name === name)
    .map((message) => message.content.text)
    .join('');
}

/** A Jupyter server with one tsgather kernel started and ready (a test file's shared kernel). */
export async function startKernel(): Promise<{ server: JupyterServer; kernel: Kernel.IKernelConnection }> {
  const server = await startJupyterServer();
  const kernel = await server.kernels.startNew({ name: 'tsgather' });
  await kernel.info;
  return { server, kernel };
}

/** Shuts the kernel down and stops its server (either may be missing when start-up failed). */
export async function stopKernel(server: JupyterServer | undefined, kernel: Kernel.IKernelConnection | undefined): Promise<void> {
  await kernel?.shutdown().catch(() => undefined);
  kernel?.dispose();
  await server?.stop();
}

/** Before the enclosing describe's tests: a Jupyter server with one tsgather kernel, handed to `use`; both stopped after them. */
export function withKernel(use: (started: { server: JupyterServer; kernel: Kernel.IKernelConnection }) => void): void {
  let started: { server: JupyterServer; kernel: Kernel.IKernelConnection } | undefined;
  before(async () => {
    started = await startKernel();
    use(started);
  });
  after(() => stopKernel(started?.server, started?.kernel));
}
