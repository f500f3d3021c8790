/** The dispatch table: one small handler per request type (shell and control alike). */
import type { KernelMessage } from '@jupyterlab/services';
import { handleCommInfo, handleCommMsg, handleCommOpen } from './comms.js';
import { handleExecute } from './execute-handler.js';
import { handleComplete, handleInspect, handleIsComplete } from './introspection-handlers.js';
import type { Kernel, Request } from './kernel.js';
import { kernelInfo } from './kernel-info.js';

/** @jupyterlab/services names the shutdown message types but has no interfaces for them. */
interface ShutdownRequestMsg extends KernelMessage.IShellMessage<'shutdown_request'> {
  content: { restart?: boolean };
}
interface ShutdownReplyMsg extends KernelMessage.IShellMessage<'shutdown_reply'> {
  content: { status: 'ok'; restart: boolean };
}
interface ShutdownBroadcastMsg extends KernelMessage.IIOPubMessage<'shutdown_reply'> {
  content: ShutdownReplyMsg['content'];
}

// biome-ignore lint/suspicious/noExplicitAny: each handler takes the request type of its own message
export type Handler = (kernel: Kernel, request: Request<any>) => void | Promise<void>;

export const handlers: Partial<Record<KernelMessage.MessageType, Handler>> = {
  kernel_info_request: (kernel, request) => kernel.reply<KernelMessage.IInfoReplyMsg>(request, kernelInfo()),
  execute_request: handleExecute,
  is_complete_request: handleIsComplete,
  complete_request: handleComplete,
  inspect_request: handleInspect,
  comm_info_request: handleCommInfo,
  comm_open: handleCommOpen,
  comm_msg: handleCommMsg,
  comm_close: () => {},
  history_request: handleHistory,
  interrupt_request: async (kernel, request) => {
    await kernel.executor.interrupt();
    kernel.reply<KernelMessage.IInterruptReplyMsg>(request, { status: 'ok' });
  },
  shutdown_request: handleShutdown,
};

function handleHistory(kernel: Kernel, request: Request<KernelMessage.IHistoryRequestMsg>): void {
  const history = kernel.history.query(request.message.content) as KernelMessage.IHistoryReply['history'];
  kernel.reply<KernelMessage.IHistoryReplyMsg>(request, { status: 'ok', history });
}

async function handleShutdown(kernel: Kernel, request: Request<ShutdownRequestMsg>): Promise<void> {
  const content = { status: 'ok' as const, restart: !!request.message.content.restart };
  kernel.reply<ShutdownReplyMsg>(request, content);
  kernel.iopub.publish<ShutdownBroadcastMsg>('shutdown_reply', content, request.message.header);
  // the process exits once this resolves; a restart is the client starting a new kernel process
  await kernel.shutdown();
}
