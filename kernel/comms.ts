/**
 * Comms (comm_open, comm_msg, comm_close, comm_info_request). The kernel registers no comm
 * targets, so it answers as ipykernel does for an unknown target: it closes the comm a front end
 * opened with a comm_close on IOPub, and no comm is ever open. Widget front ends take that as "no
 * widgets here" and go on: ipywidgets asks comm_info for its open comms, opens
 * `jupyter.widget.control`, and falls back to the (empty) comm list once that comm closes.
 */
import type { KernelMessage } from '@jupyterlab/services';
import type { Kernel, Request } from './kernel.js';

export function handleCommOpen(kernel: Kernel, request: Request<KernelMessage.ICommOpenMsg<'shell'>>): void {
  const { comm_id, target_name } = request.message.content;
  kernel.log.warn({ comm_id, target_name }, 'comm_open for a target this kernel does not have: closing the comm');
  kernel.iopub.publish<KernelMessage.ICommCloseMsg<'iopub'>>('comm_close', { comm_id, data: {} }, request.message.header);
}

/** No comm is open, so a comm_msg (or a comm_close, which needs no answer) reaches nothing. */
export function handleCommMsg(kernel: Kernel, request: Request<KernelMessage.ICommMsgMsg<'shell'>>): void {
  kernel.log.warn({ comm_id: request.message.content.comm_id }, 'comm_msg for a comm that is not open: ignored');
}

export function handleCommInfo(kernel: Kernel, request: Request<KernelMessage.ICommInfoRequestMsg>): void {
  kernel.reply<KernelMessage.ICommInfoReplyMsg>(request, { status: 'ok', comms: {} });
}
