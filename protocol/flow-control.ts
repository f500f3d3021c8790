/**
 * The flow-control figures that the controller and the worker must agree on, in one place: the
 * worker's result hold is only right as a fraction of the controller's window.
 * (docs/architecture.md, Flow control.)
 */

/**
 * How much work, in milliseconds, the controller keeps queued ahead of each worker. Tiny jobs (run
 * times floored at 1 µs) then go about 4,000 to a message each way: every message costs each
 * process a wake-up on the I/O thread, and with 4 ms the controller used a fifth more CPU.
 */
export const CONTROLLER_WINDOW_MS = 8;

/**
 * A worker with jobs still queued sends its results at least this often. The controller tops a
 * worker up once half its window is free, so half the window makes about one results message per
 * top-up.
 */
export const RESULT_HOLD_MS = CONTROLLER_WINDOW_MS / 2;

/** Most jobs the controller keeps queued ahead of one worker, however tiny they are. */
export const MAX_JOBS_AHEAD = 8192;

/** A worker sends the results it holds once there are this many: half the most it can have queued, as with the hold. */
export const RESULT_HOLD_MAX = MAX_JOBS_AHEAD / 2;
