/** Turns cell values into Jupyter mime bundles and thrown values into error outputs. */
import type { IMimeBundle, OutputMetadata } from '@jupyterlab/nbformat';
import { inspect, types } from 'node:util';
import { formatTraceback } from './traceback.js';
import type { ExecuteOutcome } from './worker-messages.js';

/**
 * An object may render itself: `[Symbol.for('tsgather.mimeBundle')]()` returns `{ data, metadata }`,
 * or undefined for "show nothing" (display handles use that, so `display(x)` as the last
 * expression of a cell does not also print the handle).
 */
export const MIME_BUNDLE = Symbol.for('tsgather.mimeBundle');

export interface Rendered {
  data: IMimeBundle;
  metadata: OutputMetadata;
}

export type MimeRenderable = { [MIME_BUNDLE](): Rendered | undefined };

export function renderValue(value: unknown): Rendered | undefined {
  if (value === undefined) return undefined;
  const custom = (value as Partial<MimeRenderable> | null)?.[MIME_BUNDLE];
  if (typeof custom === 'function') return custom.call(value);
  return { data: { 'text/plain': plainText(value) }, metadata: {} };
}

export function plainText(value: unknown, depth = 4): string {
  return inspect(value, { depth, maxArrayLength: 100, maxStringLength: 10_000, breakLength: 100 });
}

export type ErrorOutcome = Extract<ExecuteOutcome, { status: 'error' }>;

/** An error the kernel reports itself (no stack): its name in red, then any detail lines. */
export function errorOutcome(ename: string, evalue: string, traceback: string[] = []): ErrorOutcome {
  return { status: 'error', ename, evalue, traceback: [`\x1b[0;31m${ename}\x1b[0m: ${evalue}`, ...traceback] };
}

export const interruptedOutcome = (): ErrorOutcome => errorOutcome('Interrupted', 'the cell was interrupted');

export function thrownOutcome(thrown: unknown): ErrorOutcome {
  if (!types.isNativeError(thrown) && !(thrown instanceof Error)) {
    return errorOutcome('Uncaught', plainText(thrown, 2));
  }
  const error = thrown as Error & { remoteStack?: unknown; job?: unknown };
  const ename = error.name || error.constructor?.name || 'Error';
  const evalue = String(error.message);
  // A RemoteError (duck-typed: the engine a notebook loads may be another copy of tsgather)
  const remote = typeof error.remoteStack === 'string' && typeof error.job === 'number';
  const note = remote ? `raised on a worker by job ${error.job}; the worker's full stack is in error.remoteStack` : undefined;
  return { status: 'error', ename, evalue, traceback: formatTraceback(ename, evalue, error.stack, note) };
}
