/** Kernel logs: the logger every tsgather process uses, at TSGATHER_KERNEL_LOG's level (Jupyter shows a kernel's stderr in the server log). */
import type { Logger } from 'pino';
import { createLogger, logLevel } from '../runtime/logger.js';

export function kernelLogger(): Logger {
  return createLogger('kernel', logLevel(process.env.TSGATHER_KERNEL_LOG, 'warn'));
}
