/** Kernel logs: pino, to stderr (Jupyter shows a kernel's stderr in the server log). */
import { pino, type Logger } from 'pino';

export function createLogger(name = 'tsgather-kernel'): Logger {
  return pino({ name, level: process.env.TSGATHER_KERNEL_LOG ?? 'warn' }, pino.destination({ dest: 2, sync: true }));
}
