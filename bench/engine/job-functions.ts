/**
 * The job functions every system runs. They are shipped as source to the workers, so each one
 * must be self-contained (no closures over this module).
 */

export const noop = (): null => null;

/** Pure CPU work whose length is set by `iterations` (calibrated to ~50 ms, see cpu-scaling.ts). */
export const spin = (iterations: number): number => {
  let x = 0;
  for (let i = 0; i < iterations; i++) x += Math.sqrt(i + x * 1e-12);
  return x;
};

export const echo = <T>(value: T): T => value;

/** Busy for `ms` milliseconds: long enough that the controller hands such jobs out two at a time. */
export const busy = (ms: number): number => {
  const until = performance.now() + ms;
  let n = 0;
  while (performance.now() < until) n++;
  return n;
};

/** Keeps its worker occupied (asynchronously) for `ms` milliseconds. */
export const hold = (ms: number): Promise<null> => new Promise((resolve) => setTimeout(() => resolve(null), ms));

export const jobFunctions = { noop, spin, echo, busy, hold } as const;
