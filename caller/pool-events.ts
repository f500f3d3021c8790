/** What the pool emits (ScatterGather's events), and which of them keep a process alive. */
import type { ControllerEvent, ControllerToCaller } from '../protocol/index.js';
import type { JobOutput, JobPart, Progress } from './types.js';

/** What the pool emits, by event name. */
export interface ScatterGatherEvents {
  event: [ControllerEvent];
  output: [JobOutput];
  /** Parts of jobs added with `{ stream: true }`, as they come. */
  part: [JobPart];
  progress: [Progress];
  exit: [{ code: number | null; signal: string | null; expected: boolean }];
  ready: [Extract<ControllerToCaller, { t: 'ready' }>];
}

/** Listeners on these wait for something the pool will say: they keep the process alive (see ScatterGather's busy()). */
export const KEEP_ALIVE_EVENTS = new Set<string>(['event', 'output', 'part', 'exit']);
