/** The dispatch table: one small handler per request type (shell and control alike). */
import type { KernelMessage } from '@jupyterlab/services';
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
  comm_info_request: (kernel, request) => kernel.reply<KernelMessage.ICommInfoReplyMsg>(request, { status: 'ok', comms: {} }),
  history_request: handleHistory,
  interrupt_request: async (kernel, request) => {
    await kernel.executor.interrupt();
    kernel.reply<KernelMessage.IInterruptReplyMsg>(request, { status: 'ok' });
  },
  shutdown_request: handleShutdown,
};

function handleHistory(kernel: Kernel, request: Request<KernelMessage.IHistoryRequestMsg>): void {
  const query = request.message.content;
  let history = kernel.history;
  if (query.hist_access_type === 'tail') history = history.slice(-Math.max(0, query.n));
  if (query.hist_access_type === 'range') history = history.filter(([, line]) => line >= query.start && (query.stop <= 0 || line < query.stop));
  if (query.hist_access_type === 'search') {
    const pattern = new RegExp(
      `^${query.pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
      's',
    );
    history = history.filter(([, , code]) => pattern.test(code));
    if (query.unique) history = history.filter((entry, i) => history.findIndex(([, , code]) => code === entry[2]) === i);
    if (query.n) history = history.slice(-query.n);
  }
  kernel.reply<KernelMessage.IHistoryReplyMsg>(request, { status: 'ok', history });
}

async function handleShutdown(kernel: Kernel, request: Request<ShutdownRequestMsg>): Promise<void> {
  const content = { status: 'ok' as const, restart: !!request.message.content.restart };
  kernel.reply<ShutdownReplyMsg>(request, content);
  kernel.iopub.publish<ShutdownBroadcastMsg>('shutdown_reply', content, request.message.header);
  // the process exits once this resolves; a restart is the client starting a new kernel process
  await kernel.shutdown();
}
