/**
 * In the cell worker: what goes to the kernel thread, in order. A mime bundle with a Vega-Lite
 * chart (a display, or a cell's value) is sent once its SVG picture is drawn (vega-svg.ts), and
 * what comes after it waits behind it, so that the cell's outputs keep their order.
 */
import type { IMimeBundle } from '@jupyterlab/nbformat';
import { vegaLiteSpec, withSvg } from './vega-svg.js';
import type { ExecuteOutcome, FromWorker } from './worker-messages.js';

export class WorkerOutbox {
  private tail: Promise<void> = Promise.resolve();
  /** Messages waiting behind a chart being drawn. */
  private held = 0;

  constructor(private readonly post: (message: FromWorker) => void) {}

  send(message: FromWorker): void {
    const drawn = withPicture(message);
    // An interrupt's acknowledgement is no output: it never waits (the kernel gives it 250 ms).
    if ((!drawn && this.held === 0) || message.type === 'interrupted') return this.post(message);
    this.held++;
    const ready = drawn ?? message;
    this.tail = this.tail
      .then(() => ready)
      .then((next) => {
        this.held--;
        try {
          this.post(next);
        } catch (error) {
          // as a synchronous send would have thrown to the cell, but the cell has moved on
          this.post({ type: 'stream', name: 'stderr', text: `a ${next.type} message could not be sent: ${(error as Error).message}\n` });
        }
      });
  }
}

/** The message with its chart's SVG added, when it carries a chart without one. */
function withPicture(message: FromWorker): Promise<FromWorker> | undefined {
  if (message.type === 'display' && 'data' in message && vegaLiteSpec(message.data) !== undefined) {
    return withSvg(message.data).then((data) => ({ ...message, data }));
  }
  const outcome = message.type === 'reply' ? (message.value as ExecuteOutcome | undefined) : undefined;
  if (message.type === 'reply' && outcome?.status === 'ok' && vegaLiteSpec(outcome.data) !== undefined) {
    return withSvg(outcome.data as IMimeBundle).then((data) => ({ ...message, value: { ...outcome, data } }));
  }
  return undefined;
}
