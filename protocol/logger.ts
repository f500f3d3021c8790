/**
 * The one way every process makes its logger: pino, JSON lines on stderr, a `role` field, the
 * level from the caller or TSGATHER_LOG_LEVEL. Anything that looks like key material is redacted,
 * so a careless `log.info(options)` cannot leak a secret key.
 */
import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const KEY_FIELDS = ['secretKey', 'secret', 'privateKey', 'curveSecretKey', 'serverKey', 'keyPair', 'key'];

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

/** The level to use: the explicit one, else TSGATHER_LOG_LEVEL, else the fallback. */
export function logLevel(explicit: string | undefined, fallback: LogLevel): LogLevel {
  const chosen = explicit ?? process.env.TSGATHER_LOG_LEVEL;
  return isLogLevel(chosen) ? chosen : fallback;
}

export function createLogger(role: string, level: LogLevel): Logger {
  return pino(
    {
      level,
      base: { role, pid: process.pid },
      redact: { paths: [...KEY_FIELDS, ...KEY_FIELDS.map((field) => `*.${field}`)], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
