/**
 * Checks spawnScatterGather's numeric options before anything is started: a wrong value gets a
 * TypeError naming the option and what it takes, not a start-up that times out or a cluster
 * with no workers whose jobs wait for ever.
 */
import type { SpawnOptions } from './types.js';

type NumericOption = keyof {
  [K in keyof SpawnOptions as NonNullable<SpawnOptions[K]> extends number ? K : never]: unknown;
};

interface Rule {
  wanted: string;
  fits(value: number): boolean;
}

const WHOLE_FROM_ONE: Rule = { wanted: 'a whole number ≥ 1', fits: (n) => Number.isInteger(n) && n >= 1 };
const WHOLE_FROM_ZERO: Rule = { wanted: 'a whole number ≥ 0', fits: (n) => Number.isInteger(n) && n >= 0 };
const POSITIVE_MS: Rule = { wanted: 'a number of milliseconds > 0', fits: (n) => Number.isFinite(n) && n > 0 };
const NON_NEGATIVE_MS: Rule = { wanted: 'a number of milliseconds ≥ 0', fits: (n) => Number.isFinite(n) && n >= 0 };
const POSITIVE: Rule = { wanted: 'a number > 0', fits: (n) => Number.isFinite(n) && n > 0 };
const POSITIVE_MB: Rule = { wanted: 'a number of megabytes > 0', fits: (n) => Number.isFinite(n) && n > 0 };
/** A timer's longest delay: Node fires a longer one at once. */
const TIMER_MS: Rule = { wanted: 'a number of milliseconds > 0 and at most 2147483647 (24.8 days)', fits: (n) => Number.isFinite(n) && n > 0 && n <= 2 ** 31 - 1 };

const RULES: Record<NumericOption, Rule> = {
  workers: WHOLE_FROM_ONE,
  spareWorkers: WHOLE_FROM_ZERO,
  retries: WHOLE_FROM_ZERO,
  timeoutRetries: WHOLE_FROM_ZERO,
  maxQueued: WHOLE_FROM_ONE,
  heartbeatMs: POSITIVE_MS,
  heartbeatTimeoutMs: POSITIVE_MS,
  connectTimeoutMs: POSITIVE_MS,
  timeoutMs: NON_NEGATIVE_MS,
  placementTimeoutMs: POSITIVE_MS,
  weight: POSITIVE,
  workerHeapMb: POSITIVE_MB,
  workerMaxRssMb: POSITIVE_MB,
  sessionIdleMs: TIMER_MS,
  sessionHoldMb: POSITIVE_MB,
};

/** `value` if it is in range for option `name`, else a TypeError saying what the option takes. */
export function checkedOption(name: NumericOption, value: unknown): number {
  const rule = RULES[name];
  if (typeof value !== 'number' || !rule.fits(value)) throw new TypeError(`${name} must be ${rule.wanted} (got ${typeof value === 'string' ? `'${value}'` : String(value)})`);
  return value;
}

export function checkSpawnOptions(options: SpawnOptions): void {
  for (const name of Object.keys(RULES) as NumericOption[]) {
    if (options[name] !== undefined) checkedOption(name, options[name]);
  }
  if (options.session === undefined) {
    const stray = (['attachOnly', 'sessionIdleMs', 'sessionHoldMb'] as const).filter((name) => options[name] !== undefined);
    if (stray.length > 0) throw new TypeError(`${stray.join(', ')} ${stray.length > 1 ? 'are' : 'is'} for named sessions: give session: 'name' too`);
  }
}
