/**
 * `tsgather server --idle-exit SECONDS`: a server started by a batch system or a container must not
 * run for ever once its notebooks are gone. It goes once no controller has been in session for
 * that long, counted from its start.
 */
export class IdleWatch {
  private lastInSession = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(afterMs: number, inSession: () => boolean, idle: () => void) {
    this.timer = setInterval(
      () => {
        const now = Date.now();
        if (inSession()) this.lastInSession = now;
        else if (now - this.lastInSession >= afterMs) {
          this.stop();
          idle();
        }
      },
      Math.min(1000, Math.max(50, afterMs / 4)),
    ).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
