/** Exit codes scripts can rely on (documented in README's CLI reference). */

export const EXIT = {
  ok: 0,
  /** The command ran and failed: a cell failed, a server did not start, a host did not answer. */
  failure: 1,
  /** Bad arguments or options; nothing was done. */
  usage: 2,
  /** `server status` / `server stop`: no server is running (as LSB init scripts say). */
  notRunning: 3,
} as const;

/** Prints `error: <message>` to stderr and sets the exit code (the process ends when its work is done). */
export function fail(message: string, code: number = EXIT.failure): void {
  process.stderr.write(`error: ${message}\n`);
  process.exitCode = code;
}
