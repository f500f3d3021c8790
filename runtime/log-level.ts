/** Log levels and how a process picks its own, apart from the logger so that choosing one loads no logger. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

/** The level to use: the explicit one, else TSGATHER_LOG_LEVEL, else the fallback. */
export function logLevel(explicit: string | undefined, fallback: LogLevel): LogLevel {
  const chosen = explicit ?? process.env.TSGATHER_LOG_LEVEL;
  return isLogLevel(chosen) ? chosen : fallback;
}
