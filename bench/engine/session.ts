/** A tsgather instance with the bench's job functions defined on every worker. */
import { setTimeout } from 'node:timers/promises';
import { spawnScatterGather, type ScatterGather } from '../../controller/index.js';
import { jobFunctions } from './job-functions.js';

export async function openSession(workers: number): Promise<ScatterGather> {
  const sg = await spawnScatterGather([], { workers, echo: false });
  for (const [name, fn] of Object.entries(jobFunctions)) await sg.define(name, fn);
  await settle();
  return sg;
}

/**
 * Lets a new engine come to rest before anything is timed: its spare workers start 0.5 s after the
 * workers are up and take about as long again to load, and every figure but start-up is a steady
 * state's. Nothing announces that they are loaded, so this waits a fixed while.
 */
export function settle(): Promise<void> {
  return setTimeout(SETTLE_MS);
}

const SETTLE_MS = 1500;

/** Identical no-argument items for `count` jobs. */
export function noArgItems(count: number): Array<[unknown[]]> {
  return Array.from({ length: count }, () => [[]] as [unknown[]]);
}
