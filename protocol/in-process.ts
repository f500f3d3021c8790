/**
 * A link between a controller and the compute server running in the same process (the embedded
 * cluster). The same messages as over a socket, handed over by function call: no copy, no system
 * call, no thread hop and no keys. Each message is delivered on a later microtask, in order, so a
 * sender is never re-entered by its peer in the middle of a handler.
 */
import type { Frames } from './messages.js';

export type Deliver = (message: Buffer[]) => void;

/** A send function whose messages reach `deliver`; what `deliver` throws goes to `onError`, as a socket's receive loop would report it. */
export function inProcessSender(deliver: Deliver, onError: (error: unknown) => void): (message: Frames) => void {
  let queue: Buffer[][] = [];
  const drain = () => {
    const batch = queue;
    queue = [];
    for (const message of batch) {
      try {
        deliver(message);
      } catch (error) {
        onError(error);
      }
    }
  };
  return (message) => {
    if (queue.length === 0) queueMicrotask(drain);
    queue.push(message.map(asBuffer));
  };
}

function asBuffer(frame: Buffer | Uint8Array | string): Buffer {
  if (typeof frame === 'string') return Buffer.from(frame, 'utf8');
  if (Buffer.isBuffer(frame)) return frame;
  return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
}
