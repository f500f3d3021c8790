/**
 * Checks spawnScatterGather's numeric options before anything is started: a wrong value gets a
 * TypeError naming the option and what it takes, not a start-up that times out or a cluster
 * with no workers whose jobs wait for ever.
 */
import type { SpawnOptions } from './types.js';

type NumericOption = keyof {
  [K in keyof SpawnOptions as NonNullable<SpawnOptions[K]> extends number ? K : never]: unknown;
};

const WHOLE_FROM_ONE = 'a whole number ≥ 1';
const WHOLE_FROM_ZERO = 'a whole number ≥ 0';
const POSITIVE_MS = 'a number of milliseconds > 0';
const NON_NEGATIVE_MS = 'a number of milliseconds ≥ 0';
const POSITIVE_MB = 'a number of megabytes > 0';

const WANTED: Record<NumericOption, string> = {
  workers: WHOLE_FROM_ONE,
  spareWorkers: WHOLE_FROM_ZERO,
  retries: WHOLE_FROM_ZERO,
  timeoutRetries: WHOLE_FROM_ZERO,
  maxQueued: WHOLE_FROM_ONE,
  heartbeatMs: POSITIVE_MS,
  heartbeatTimeoutMs: POSITIVE_MS,
  connectTimeoutMs: POSITIVE_MS,
  timeoutMs: NON_NEGATIVE_MS,
  workerHeapMb: POSITIVE_MB,
  workerMaxRssMb: POSITIVE_MB,
};

function fits(value: number, wanted: string): boolean {
  if (!Number.isFinite(value)) return false;
  if (wanted === WHOLE_FROM_ONE) return Number.isInteger(value) && value >= 1;
  if (wanted === WHOLE_FROM_ZERO) return Number.isInteger(value) && value >= 0;
  if (wanted === NON_NEGATIVE_MS) return value >= 0;
  return value > 0;
}

export function checkSpawnOptions(options: SpawnOptions): void {
  for (const [name, wanted] of Object.entries(WANTED) as Array<[NumericOption, string]>) {
    const value: unknown = options[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !fits(value, wanted)) throw new TypeError(`${name} must be ${wanted} (got ${typeof value === 'string' ? `'${value}'` : String(value)})`);
  }
}
