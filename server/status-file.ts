/**
 * A running server's state written to a file beside its pid file, once a second, for `tsgather
 * server status` to read: its sessions and their shares, its workers and labels. Written whole to
 * a temporary file and renamed, so a reader never sees half of it; readable by its owner only.
 */
import fs from 'node:fs';
import type { ServerStatusSnapshot } from '../protocol/index.js';

const WRITE_EVERY_MS = 1000;

export class StatusFile {
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => ServerStatusSnapshot,
  ) {
    this.write();
    this.timer = setInterval(() => this.write(), WRITE_EVERY_MS).unref();
  }

  /** Writes now (a session came or went, so that status need not wait for the next second). */
  write(): void {
    const temporary = `${this.path}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(temporary, `${JSON.stringify(this.snapshot())}\n`, { mode: 0o600 });
      fs.renameSync(temporary, this.path);
    } catch {
      // A status file is a convenience: a full disk or a removed folder must not stop the server.
    }
  }

  close(): void {
    clearInterval(this.timer);
    fs.rmSync(this.path, { force: true });
  }
}
