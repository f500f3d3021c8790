/** IOPub messages → nbformat 4 outputs, as a notebook frontend records them. */
import type { IDisplayData, IExecuteResult, IOutput, MultilineString } from '@jupyterlab/nbformat';
import type { KernelMessage } from '@jupyterlab/services';

export function joinText(text: MultilineString): string {
  return Array.isArray(text) ? text.join('') : text;
}

export class OutputRecorder {
  /** Outputs by display_id, across all cells: update_display_data may target an earlier cell. */
  private readonly displays = new Map<string, Array<IDisplayData | IExecuteResult>>();
  private readonly clearOnNext = new WeakSet<IOutput[]>();

  record(outputs: IOutput[], message: KernelMessage.IIOPubMessage): void {
    const type = message.header.msg_type;
    if (type === 'update_display_data') return this.update(message as KernelMessage.IUpdateDisplayDataMsg);
    if (type === 'clear_output') {
      if ((message as KernelMessage.IClearOutputMsg).content.wait) this.clearOnNext.add(outputs);
      else outputs.length = 0;
      return;
    }
    const output = toOutput(message);
    if (!output) return;
    if (this.clearOnNext.has(outputs)) {
      this.clearOnNext.delete(outputs);
      outputs.length = 0;
    }
    const last = outputs.at(-1);
    if (output.output_type === 'stream' && last?.output_type === 'stream' && last.name === output.name) {
      last.text = joinText(last.text as MultilineString) + joinText(output.text as MultilineString);
      return;
    }
    outputs.push(output);
    const displayId = (message.content as { transient?: { display_id?: string } }).transient?.display_id;
    if (displayId && (output.output_type === 'display_data' || output.output_type === 'execute_result')) {
      const list = this.displays.get(displayId) ?? [];
      list.push(output as IDisplayData | IExecuteResult);
      this.displays.set(displayId, list);
    }
  }

  private update(message: KernelMessage.IUpdateDisplayDataMsg): void {
    for (const output of this.displays.get(message.content.transient.display_id) ?? []) {
      output.data = message.content.data;
      output.metadata = message.content.metadata;
    }
  }
}

function toOutput(message: KernelMessage.IIOPubMessage): IOutput | undefined {
  switch (message.header.msg_type) {
    case 'stream': {
      const { name, text } = (message as KernelMessage.IStreamMsg).content;
      return { output_type: 'stream', name, text };
    }
    case 'display_data': {
      const { data, metadata } = (message as KernelMessage.IDisplayDataMsg).content;
      return { output_type: 'display_data', data, metadata };
    }
    case 'execute_result': {
      const { data, metadata, execution_count } = (message as KernelMessage.IExecuteResultMsg).content;
      return { output_type: 'execute_result', data, metadata, execution_count };
    }
    case 'error': {
      const { ename, evalue, traceback } = (message as KernelMessage.IErrorMsg).content;
      return { output_type: 'error', ename, evalue, traceback };
    }
    default:
      return undefined;
  }
}
