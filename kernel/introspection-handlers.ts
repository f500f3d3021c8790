/** complete_request, inspect_request and is_complete_request. Jupyter cursors count code points. */
import type { KernelMessage } from '@jupyterlab/services';
import { codePointToUtf16, utf16ToCodePoint } from './code-points.js';
import { isComplete } from './is-complete.js';
import type { Kernel, Request } from './kernel.js';

export async function handleComplete(kernel: Kernel, request: Request<KernelMessage.ICompleteRequestMsg>): Promise<void> {
  const { code, cursor_pos } = request.message.content;
  const cursor = codePointToUtf16(code, cursor_pos);
  try {
    const { matches, start, end } = await kernel.executor.complete(code, cursor);
    kernel.reply<KernelMessage.ICompleteReplyMsg>(request, {
      status: 'ok',
      matches,
      cursor_start: utf16ToCodePoint(code, start),
      cursor_end: utf16ToCodePoint(code, end),
      metadata: {},
    });
  } catch (error) {
    kernel.log.warn({ err: error }, 'completion failed');
    kernel.reply<KernelMessage.ICompleteReplyMsg>(request, { status: 'ok', matches: [], cursor_start: cursor_pos, cursor_end: cursor_pos, metadata: {} });
  }
}

export async function handleInspect(kernel: Kernel, request: Request<KernelMessage.IInspectRequestMsg>): Promise<void> {
  const { code, cursor_pos, detail_level } = request.message.content;
  try {
    const { found, data } = await kernel.executor.inspect(code, codePointToUtf16(code, cursor_pos), detail_level === 1 ? 1 : 0);
    kernel.reply<KernelMessage.IInspectReplyMsg>(request, { status: 'ok', found, data, metadata: {} });
  } catch (error) {
    kernel.log.warn({ err: error }, 'inspection failed');
    kernel.reply<KernelMessage.IInspectReplyMsg>(request, { status: 'ok', found: false, data: {}, metadata: {} });
  }
}

export function handleIsComplete(kernel: Kernel, request: Request<KernelMessage.IIsCompleteRequestMsg>): void {
  kernel.reply<KernelMessage.IIsCompleteReplyMsg>(request, isComplete(request.message.content.code));
}
