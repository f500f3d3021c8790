/** Parsers for option values, shared by every command: a bad value is a usage error (exit 2) that says what is wanted. */
import { InvalidArgumentError } from 'commander';
import { isLogLevel, LOG_LEVELS } from '../runtime/log-level.js';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

export function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number (0 or more)');
  return n;
}

function positive(value: string, wanted: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`must be ${wanted}`);
  return n;
}

export const positiveNumber = (value: string): number => positive(value, 'a positive number');
export const seconds = (value: string): number => positive(value, 'a positive number of seconds');

/** For repeatable options: each use adds to the list. */
export const collect = (value: string, previous: string[]) => [...previous, value];

export function logLevelOption(value: string): string {
  if (!isLogLevel(value)) throw new InvalidArgumentError(`must be one of ${LOG_LEVELS.join(', ')}`);
  return value;
}
