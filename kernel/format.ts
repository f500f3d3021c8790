/** Turns cell values into Jupyter mime bundles and thrown values into error outputs. */
import type { IMimeBundle, OutputMetadata } from '@jupyterlab/nbformat';
import { inspect, types } from 'node:util';
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

export function errorOutcome(ename: string, evalue: string, traceback: string[] = []): ErrorOutcome {
  return { status: 'error', ename, evalue, traceback: [`${ename}: ${evalue}`, ...traceback] };
}

export const interruptedOutcome = (): ErrorOutcome => errorOutcome('Interrupted', 'the cell was interrupted');

/** Stack frames from the kernel's own machinery (the inspector call that ran the cell, and below) are cut. */
const KERNEL_FRAME = /\(node:inspector[:)]|[\\/]dist[\\/]kernel[\\/]|\(node:internal[\\/]/;

export function thrownOutcome(thrown: unknown): ErrorOutcome {
  if (!types.isNativeError(thrown) && !(thrown instanceof Error)) {
    return errorOutcome('Uncaught', plainText(thrown, 2));
  }
  const error = thrown as Error;
  const frames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  const userFrames = frames.slice(
    0,
    Math.max(
      0,
      frames.findIndex((line) => KERNEL_FRAME.test(line)),
    ),
  );
  const kept = frames.some((line) => KERNEL_FRAME.test(line)) ? userFrames : frames;
  const name = error.name || error.constructor?.name || 'Error';
  return errorOutcome(
    name,
    error.message,
    kept.map((line) => line.trimEnd()),
  );
}
