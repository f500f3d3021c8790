/**
 * Runs a notebook headless, without Python or Jupyter: starts our kernel, executes the code cells
 * in order over ZeroMQ as a Jupyter client would, records their outputs, writes the executed
 * notebook and shuts the kernel down.
 */
import type { ICodeCell, INotebookContent, IOutput } from '@jupyterlab/nbformat';
import type { KernelMessage } from '@jupyterlab/services';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { KernelClient, KernelTimeoutError, parentId } from './client.js';
import { DISPLAY_NAME, KERNEL_NAME } from './install.js';
import { launchKernel, type LaunchedKernel } from './launch.js';
import { joinText, OutputRecorder } from './notebook-outputs.js';

export interface RunNotebookOptions {
  /** Where to write the executed notebook; default `<name>.out.ipynb` beside the input. */
  output?: string;
  /** Per cell, as nbclient's timeout; default 10 minutes. */
  timeoutMs?: number;
  /** The kernel's working directory; default the notebook's directory. */
  cwd?: string;
  /** Go on after a cell fails and resolve with the errors, rather than stop and reject. */
  allowErrors?: boolean;
  /** Called before each code cell runs (index among all cells, and their count). */
  onCell?: (index: number, total: number) => void;
}

export interface CellError {
  /** Index of the cell in the notebook's cells. */
  cell: number;
  ename: string;
  evalue: string;
  traceback: string[];
}

export interface RunNotebookResult {
  /** Code cells executed. */
  cells: number;
  errors: CellError[];
  outputPath: string;
  durationMs: number;
}

export class NotebookRunError extends Error {
  override name = 'NotebookRunError';

  constructor(readonly result: RunNotebookResult) {
    const first = result.errors[0];
    super(`cell ${first.cell} failed: ${first.ename}: ${first.evalue} (executed notebook: ${result.outputPath})`);
  }
}

const DEFAULT_CELL_TIMEOUT_MS = 10 * 60_000;
const SHUTDOWN_TIMEOUT_MS = 15_000;

export function defaultOutputPath(inputPath: string): string {
  return join(dirname(inputPath), `${basename(inputPath, '.ipynb')}.out.ipynb`);
}

export async function runNotebook(inputPath: string, options: RunNotebookOptions = {}): Promise<RunNotebookResult> {
  const started = Date.now();
  const notebook = JSON.parse(await readFile(inputPath, 'utf8')) as INotebookContent;
  if (notebook.nbformat !== 4) throw new Error(`${inputPath}: nbformat ${notebook.nbformat} is not supported (4 is)`);
  const outputPath = options.output ?? defaultOutputPath(inputPath);
  const kernel = await launchKernel({ cwd: options.cwd ?? dirname(resolve(inputPath)) });
  const client = KernelClient.connect(kernel.info);
  const errors: CellError[] = [];
  let executed = 0;
  try {
    const info = await untilKernelExits(kernel, client.waitForReady());
    notebook.metadata.kernelspec = { name: KERNEL_NAME, display_name: DISPLAY_NAME, language: 'typescript' };
    notebook.metadata.language_info = info.content.status === 'ok' ? info.content.language_info : notebook.metadata.language_info;
    const outputs = new CellOutputs(client);
    for (const [index, cell] of notebook.cells.entries()) {
      if (cell.cell_type !== 'code') continue;
      const code = cell as ICodeCell;
      code.outputs = [];
      code.execution_count = null;
      const source = joinText(code.source);
      if ((errors.length > 0 && !options.allowErrors) || !source.trim()) continue;
      options.onCell?.(index, notebook.cells.length);
      const error = await runCell(client, kernel, code, source, outputs, options.timeoutMs ?? DEFAULT_CELL_TIMEOUT_MS);
      executed++;
      if (error) errors.push({ cell: index, ...error });
    }
  } finally {
    await shutDown(client, kernel);
  }
  await writeFile(outputPath, `${JSON.stringify(notebook, null, 1)}\n`);
  const result = { cells: executed, errors, outputPath, durationMs: Date.now() - started };
  if (errors.length > 0 && !options.allowErrors) throw new NotebookRunError(result);
  return result;
}

async function runCell(client: KernelClient, kernel: LaunchedKernel, cell: ICodeCell, source: string, outputs: CellOutputs, timeoutMs: number): Promise<Omit<CellError, 'cell'> | undefined> {
  try {
    const { reply } = await untilKernelExits(kernel, client.execute(source, { timeoutMs }));
    outputs.attach(parentId(reply), cell.outputs);
    cell.execution_count = reply.content.execution_count;
    if (reply.content.status !== 'error') return undefined;
    const { ename, evalue, traceback } = reply.content;
    return { ename, evalue, traceback };
  } catch (error) {
    if (!(error instanceof KernelTimeoutError)) throw error;
    await client.request('control', 'interrupt_request', {}, 5000).catch(() => undefined);
    const failure = { ename: 'CellTimeoutError', evalue: `the cell did not finish within ${timeoutMs} ms`, traceback: [] };
    cell.outputs.push({ output_type: 'error', ...failure });
    return failure;
  }
}

/**
 * Records IOPub messages into the outputs of the cell whose request they answer — including
 * output that async work produces after its cell has finished.
 */
class CellOutputs {
  private readonly recorder = new OutputRecorder();
  private readonly byRequest = new Map<string, IOutput[]>();
  private readonly early = new Map<string, KernelMessage.IIOPubMessage[]>();

  constructor(client: KernelClient) {
    client.on('iopub', (message) => {
      const id = parentId(message);
      const outputs = this.byRequest.get(id);
      if (outputs) this.recorder.record(outputs, message as KernelMessage.IIOPubMessage);
      else if (id) this.early.set(id, [...(this.early.get(id) ?? []), message as KernelMessage.IIOPubMessage]);
    });
  }

  attach(requestId: string, outputs: IOutput[]): void {
    this.byRequest.set(requestId, outputs);
    for (const message of this.early.get(requestId) ?? []) this.recorder.record(outputs, message);
    this.early.delete(requestId);
  }
}

async function untilKernelExits<T>(kernel: LaunchedKernel, work: Promise<T>): Promise<T> {
  const died = kernel.exited.then((code) => {
    throw new Error(`the kernel exited (${code}):\n${kernel.stderr()}`);
  });
  return Promise.race([work, died]);
}

async function shutDown(client: KernelClient, kernel: LaunchedKernel): Promise<void> {
  try {
    await client.request('control', 'shutdown_request', { restart: false }, SHUTDOWN_TIMEOUT_MS);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([kernel.exited, new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS)))]);
    clearTimeout(timer);
  } catch {
    // a kernel that does not answer is killed below
  } finally {
    client.close();
    await kernel.kill();
  }
}
