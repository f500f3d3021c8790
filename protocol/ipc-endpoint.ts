/** ipc:// endpoints of this process's own. Kept apart from transport.ts so that importing it does not load ZeroMQ. */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

let socketDir: string | undefined;

/**
 * A fresh ipc:// endpoint for this process to bind. Socket files live in a directory of this
 * process's own, mode 0700, so no other user can connect to them, and the directory goes when
 * the process exits (libzmq leaves the files behind when a process exits without closing).
 * Paths stay short: unix socket paths are limited to ~107 bytes.
 */
export function ipcEndpoint(tag: string): string {
  if (!socketDir) {
    const base = process.env.TMPDIR && process.env.TMPDIR.length < 60 ? process.env.TMPDIR : '/tmp';
    const dir = mkdtempSync(join(base, 'tsg-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    socketDir = dir;
  }
  return `ipc://${socketDir}/${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}.sock`;
}
