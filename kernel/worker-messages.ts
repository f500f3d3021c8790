/** What the kernel thread and the cell worker thread say to each other over the worker's port. */
import type { IMimeBundle, OutputMetadata } from '@jupyterlab/nbformat';
import type { DisplayMessage } from './display.js';
import type { CellText } from './cell-sources.js';
import type { CompiledCell } from './transpile.js';

/** A cell to run, with what maps its positions back to what the user wrote. */
export type RunnableCell = CellText & Pick<CompiledCell, 'lexical'>;

export type StreamName = 'stdout' | 'stderr';

export type ExecuteOutcome = { status: 'ok'; data?: IMimeBundle; metadata?: OutputMetadata } | { status: 'error'; ename: string; evalue: string; traceback: string[] };

/** Offsets are UTF-16 code units here; the kernel converts from and to Jupyter's code points. */
export interface Completion {
  matches: string[];
  start: number;
  end: number;
}

export interface Inspection {
  found: boolean;
  data: Record<string, string>;
  /** What the runtime found: a plain value (primitive, array, plain object), a function or class, or another object. */
  value?: 'plain' | 'function' | 'instance';
}

export interface Requests {
  execute: { request: { cell: RunnableCell }; reply: ExecuteOutcome };
  complete: { request: { code: string; cursor: number }; reply: Completion };
  inspect: { request: { code: string; cursor: number; detail: 0 | 1 }; reply: Inspection };
  shutdown: { request: Record<string, never>; reply: undefined };
}
export type RequestOp = keyof Requests;

export type ToWorker = ({ op: RequestOp; id: number } & Record<string, unknown>) | { op: 'interrupt'; execId: number } | { op: 'input'; id: number; value?: string; error?: string };

export type FromWorker =
  | { type: 'ready'; warnings: string[] }
  | { type: 'stream'; name: StreamName; text: string }
  | ({ type: 'display' } & DisplayMessage)
  | { type: 'input'; id: number; prompt: string; password: boolean }
  | { type: 'interrupted'; execId: number }
  | { type: 'reply'; id: number; value?: unknown; error?: string };

export interface WorkerData {
  cwd: string;
}
