/** What the kernel thread and the language worker thread (language-worker.ts) say to each other. */
import type { TypedCompletion, TypedInspection } from './language-service.js';

interface Sync {
  /** Cells run since the last request, in order. */
  cells: string[];
  /** Start the history over with these cells. */
  reset: boolean;
}

export type ToLanguageWorker = ({ op: 'complete'; id: number; code: string; cursor: number } & Sync) | ({ op: 'inspect'; id: number; code: string; cursor: number; detail: 0 | 1 } & Sync);

export type FromLanguageWorker = { id: number; value: TypedCompletion | TypedInspection } | { id: number; error: string };
