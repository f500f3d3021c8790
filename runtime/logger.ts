/**
 * The one way every process makes its logger: pino, JSON lines on stderr, a `role` field, the
 * level from the caller or TSGATHER_LOG_LEVEL. Anything that looks like key material is redacted,
 * so a careless `log.info(options)` cannot leak a secret key.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './log-level.js';

export { isLogLevel, LOG_LEVELS, logLevel, type LogLevel } from './log-level.js';

const KEY_FIELDS = ['secretKey', 'secret', 'privateKey', 'curveSecretKey', 'serverKey', 'keyPair', 'key'];

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
