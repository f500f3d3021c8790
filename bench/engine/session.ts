/** A tsgather instance with the bench's job functions defined on every worker. */
import { setTimeout } from 'node:timers/promises';
import { spawnScatterGather, type ScatterGather } from '../../caller/index.js';
import type { SpareCounts } from '../../protocol/messages.js';
import { jobFunctions } from './job-functions.js';

export async function openSession(workers: number): Promise<ScatterGather> {
  const sg = await spawnScatterGather([], { workers, echo: false });
  for (const [name, fn] of Object.entries(jobFunctions)) await sg.define(name, fn);
  await settle(sg);
  return sg;
}

/**
 * Waits until the engine is at rest before anything is timed: every figure but start-up is a
 * steady state's, and spare workers start 0.5 s after the workers are up (after a start or a
 * refresh) and take a few tenths of a second to load. At rest, each server has a loaded spare per
 * worker and none starting.
 */
export async function settle(sg: ScatterGather): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (!atRest(await sg.status())) {
    if (Date.now() > deadline) throw new Error(`the engine did not come to rest within ${SETTLE_TIMEOUT_MS / 1000} s: its spare workers never all loaded`);
    await setTimeout(SETTLE_POLL_MS);
  }
}

/** The same test, as source for a kernel cell (see kernel-cell.ts). */
export function atRest(status: Record<string, unknown>): boolean {
  const servers = status.servers as Array<{ connected: boolean; workers?: unknown[]; spares?: SpareCounts }>;
  return servers.every((server) => !server.connected || (server.spares?.starting === 0 && server.spares.ready === (server.workers?.length ?? 0)));
}

export const SETTLE_TIMEOUT_MS = 15_000;
export const SETTLE_POLL_MS = 20;

/** Identical no-argument items for `count` jobs. */
export function noArgItems(count: number): Array<[unknown[]]> {
  return Array.from({ length: count }, () => [[]] as [unknown[]]);
}
