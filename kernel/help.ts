/**
 * IPython-style help cells: `sg.map?` or `?sg.map` shows what inspection knows about the name in
 * the front end's pager, `sg.map??` with more detail (a function's source). As ipykernel does,
 * the answer is an execute_reply payload `{ source: 'page', data, start: 0 }`, and a name that
 * cannot be inspected prints "Object `name` not found." instead.
 */
import type { KernelMessage } from '@jupyterlab/services';
import type { Kernel, Request } from './kernel.js';

const NAME = String.raw`[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*`;
/** `?name`, `name?`, `??a.b?.c`, `a.b??`: a member chain with question marks on one side only. */
const HELP = new RegExp(String.raw`^\s*(\?{1,2})?\s*(${NAME}(?:\s*\??\.\s*${NAME})*)\s*(\?{1,2})?\s*$`, 'u');

export interface HelpRequest {
  expression: string;
  detail: 0 | 1;
}

/** The help request this cell is, if it is one (TypeScript has no postfix `?`, so nothing else looks like this). */
export function parseHelpRequest(code: string): HelpRequest | undefined {
  const match = HELP.exec(code);
  if (!match) return undefined;
  const [, before, expression, after] = match;
  if (!before === !after) return undefined;
  return { expression: expression!.replace(/\s+/g, ''), detail: (before ?? after)!.length === 2 ? 1 : 0 };
}

export type PagePayload = { source: 'page'; data: Record<string, string>; start: number };

/** Inspects the name and answers the execute request with a page payload. */
export async function answerHelp(kernel: Kernel, request: Request<KernelMessage.IExecuteRequestMsg>, help: HelpRequest, execution_count: number): Promise<void> {
  const { expression, detail } = help;
  let payload: PagePayload[] = [];
  try {
    const { found, data } = await kernel.executor.inspect(expression, expression.length, detail);
    if (found) payload = [{ source: 'page', data, start: 0 }];
  } catch (error) {
    kernel.log.warn({ err: error, expression }, 'inspection for help failed');
  }
  if (payload.length === 0) kernel.iopub.stream('stdout', `Object \`${expression}\` not found.\n`, request.message.header);
  kernel.reply<KernelMessage.IExecuteReplyMsg>(request, { status: 'ok', execution_count, user_expressions: {}, payload });
}
