/**
 * A link between a controller and the compute server running in the same process (the embedded
 * cluster). The same messages as over a socket, handed over by function call: no copy, no system
 * call, no thread hop and no keys.
 *
 * A message is handed over at once when the pair is idle, so a job goes on to its worker, and a
 * result on to the caller, before the sender's receive loop turns. What a side sends while it is
 * itself handling a message from its peer (a reply, say) waits for a later microtask, in order: a
 * sender is never re-entered by its peer in the middle of a handler.
 */
import type { Frames } from './messages.js';

export type Deliver = (message: Buffer[]) => void;

/** Whether either side of one link is handling a message from the other right now. */
export interface LinkTurn {
  delivering: boolean;
}

/**
 * A send function whose messages reach `deliver`; what `deliver` throws goes to `onError`, as a
 * socket's receive loop would report it. Both directions of one link share `turn`.
 */
export function inProcessSender(deliver: Deliver, onError: (error: unknown) => void, turn: LinkTurn): (message: Frames) => void {
  let queue: Buffer[][] = [];
  const handOver = (message: Buffer[]) => {
    turn.delivering = true;
    try {
      deliver(message);
    } catch (error) {
      onError(error);
    } finally {
      turn.delivering = false;
    }
  };
  const drain = () => {
    const batch = queue;
    queue = [];
    for (const message of batch) handOver(message);
  };
  return (message) => {
    const buffers = message.map(asBuffer);
    if (!turn.delivering && queue.length === 0) return handOver(buffers);
    if (queue.length === 0) queueMicrotask(drain);
    queue.push(buffers);
  };
}

function asBuffer(frame: Buffer | Uint8Array | string): Buffer {
  if (typeof frame === 'string') return Buffer.from(frame, 'utf8');
  if (Buffer.isBuffer(frame)) return frame;
  return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
}
