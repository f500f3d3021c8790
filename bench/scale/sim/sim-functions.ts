/**
 * The functions simulated workers announce as preloaded, as a real module: a real server can
 * preload the same file (`tsgather server --module dist/bench/scale/sim/sim-functions.js`), so the
 * same jobs run on simulated and on real workers. Simulated workers never call them: they take the
 * run time each one names (see runTimeOf in sim-worker.ts) and answer null.
 */

/** Returns at once. */
export const noop = (): null => null;

/** Waits `ms` milliseconds without using the CPU (a job that waits on I/O, or on another machine). */
export const sleep = (ms: number): Promise<null> => new Promise((resolve) => setTimeout(() => resolve(null), ms));

/** Keeps the CPU busy for `ms` milliseconds. */
export const spin = (ms: number): null => {
  const until = performance.now() + ms;
  while (performance.now() < until);
  return null;
};
