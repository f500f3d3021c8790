/** execute_request: execute_input, the cell's outputs, execute_result or error, then the reply. */
import type { KernelMessage } from '@jupyterlab/services';
import { answerHelp, parseHelpRequest } from './help.js';
import type { Kernel, Request } from './kernel.js';

export async function handleExecute(kernel: Kernel, request: Request<KernelMessage.IExecuteRequestMsg>): Promise<void> {
  const { code, silent = false, store_history = !silent, stop_on_error = true } = request.message.content;
  const parent = request.message.header;
  if (kernel.abortingExecutes) {
    kernel.reply<KernelMessage.IExecuteReplyMsg>(request, { status: 'aborted', execution_count: kernel.executionCount });
    return;
  }
  if (!silent && store_history) {
    kernel.executionCount++;
    kernel.history.add(kernel.executionCount, code);
  }
  const execution_count = kernel.executionCount;
  if (!silent) kernel.iopub.publish<KernelMessage.IExecuteInputMsg>('execute_input', { code, execution_count }, parent);
  const help = parseHelpRequest(code);
  if (help) return answerHelp(kernel, request, help, execution_count);

  const outcome = await kernel.runExecution(request, () => kernel.executor.execute(code, sourceName(execution_count, !silent && store_history)));

  if (outcome.status === 'ok') {
    if (outcome.data && !silent) {
      kernel.iopub.publish<KernelMessage.IExecuteResultMsg>('execute_result', { execution_count, data: outcome.data, metadata: outcome.metadata ?? {} }, parent);
      if (store_history) kernel.history.recordOutput(execution_count, String(outcome.data['text/plain'] ?? ''));
    }
    kernel.reply<KernelMessage.IExecuteReplyMsg>(request, { status: 'ok', execution_count, user_expressions: {}, payload: [] });
    return;
  }
  const { ename, evalue, traceback } = outcome;
  kernel.iopub.publish<KernelMessage.IErrorMsg>('error', { ename, evalue, traceback }, parent);
  kernel.reply<KernelMessage.IExecuteReplyMsg>(request, { status: 'error', ename, evalue, traceback, execution_count });
  if (stop_on_error) kernel.abortingExecutes = true;
}

let unnumbered = 0;

/**
 * The name a cell's code runs under, in stack frames: `cell-<execution count>.ts`. A silent or
 * unstored execution does not advance the count, so it gets a name of its own rather than
 * taking the last cell's (whose functions' frames would then be shown against the wrong code).
 */
function sourceName(executionCount: number, numbered: boolean): string {
  return numbered ? `cell-${executionCount}.ts` : `unnumbered-${++unnumbered}.ts`;
}
