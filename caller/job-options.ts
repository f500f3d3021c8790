/**
 * A call's job options checked and resolved against the spawn options: what travels with each of
 * its jobs to the controller (timeout, labels, how long to wait for a server that carries them).
 */
import { checkedOption } from './spawn-options.js';
import type { JobOptions, SpawnOptions } from './types.js';

/** What goes with every job of one call. */
export interface RunSpec {
  /** 0: none. */
  timeoutMs: number;
  labels?: string[];
  /** Fail as unplaceable after this long without a connected server carrying the labels (absent: wait). */
  placementMs?: number;
  /** Its parts come back as they are yielded (sg.stream). */
  stream?: boolean;
  /** mapReduce onServers: its workers fold the values with the definition named `key` (see FoldTag); `offset`: the index of the call's first item among all the items (a batch of an iterable). */
  fold?: { key: string; flushMs: number; offset?: number };
}

export function runSpecOf(options: JobOptions, defaults: SpawnOptions): RunSpec {
  const spec: RunSpec = { timeoutMs: Math.ceil(checkedOption('timeoutMs', options.timeoutMs ?? defaults.timeoutMs ?? 0)) };
  if (options.labels !== undefined) {
    const labels = checkedLabels(options.labels, 'labels');
    if (labels.length > 0) spec.labels = labels;
  }
  if (options.stream === true) spec.stream = true;
  const placement = options.placementTimeoutMs ?? defaults.placementTimeoutMs;
  if (placement !== undefined && spec.labels) spec.placementMs = Math.ceil(checkedOption('placementTimeoutMs', placement));
  return spec;
}

/** Labels as servers declare them (`gpu`, `site=lab2`): non-empty, no spaces or commas; sorted, without repeats. */
export function checkedLabels(labels: unknown, option: string): string[] {
  if (!Array.isArray(labels) || !labels.every((label) => typeof label === 'string' && /^[^\s,]+$/.test(label))) {
    throw new TypeError(`${option} must be a list of labels such as ['gpu', 'site=lab2'] (non-empty strings without spaces or commas)`);
  }
  return [...new Set(labels as string[])].sort();
}
