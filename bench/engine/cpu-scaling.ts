/**
 * Workload 3: CPU-bound jobs of ~50 ms each. The iteration count is calibrated in this process so
 * one call takes the target time here; the speedup compares running them all serially here with
 * running them through the engine.
 */
import type { ScatterGather } from '../../caller/index.js';
import { spin } from './job-functions.js';

/** Iterations of `spin` that take about `targetMs` here, after warming it up. */
export function calibrateSpin(targetMs: number): number {
  let iterations = 100_000;
  for (let attempt = 0; attempt < 30; attempt++) {
    const started = performance.now();
    spin(iterations);
    const took = performance.now() - started;
    if (took > targetMs / 4 && Math.abs(took - targetMs) / targetMs < 0.03) return iterations;
    iterations = Math.max(1000, Math.round(iterations * (targetMs / Math.max(took, 0.01))));
  }
  return iterations;
}

export function serialMs(jobs: number, iterations: number): number {
  const started = performance.now();
  for (let i = 0; i < jobs; i++) spin(iterations);
  return performance.now() - started;
}

export async function parallelMs(sg: ScatterGather, jobs: number, iterations: number): Promise<number> {
  const items = Array.from({ length: jobs }, () => [[iterations]] as [unknown[]]);
  const started = performance.now();
  await sg.map('spin', items);
  return performance.now() - started;
}
