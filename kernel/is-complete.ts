/** is_complete_request: would Enter run the code, or does the console need another line? */
import type { KernelMessage } from '@jupyterlab/services';
import { CellSyntaxError, transpileCell } from './transpile.js';

type IsCompleteReply = KernelMessage.IIsCompleteReplyIncomplete | KernelMessage.IIsCompleteReplyOther;

export function isComplete(code: string): IsCompleteReply {
  if (!code.trim()) return { status: 'complete' };
  try {
    transpileCell(code);
    return { status: 'complete' };
  } catch (error) {
    if (!(error instanceof CellSyntaxError)) return { status: 'unknown' };
    return error.atEnd ? { status: 'incomplete', indent: nextIndent(code) } : { status: 'invalid' };
  }
}

function nextIndent(code: string): string {
  const lastLine = code.trimEnd().split('\n').at(-1) ?? '';
  const indent = /^\s*/.exec(lastLine)?.[0] ?? '';
  return /[{[(]\s*$/.test(lastLine) ? `${indent}  ` : indent;
}
