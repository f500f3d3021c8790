/**
 * Attaching to a running session: the 'attach' request and its reply, read straight off the new
 * socket before a ScatterGather exists. Anything the controller sent before the reply was meant
 * for an earlier caller (it had not yet seen that one go) and is dropped here: the results among
 * it are held by the controller, and come again after the reply.
 */
import { randomInt } from 'node:crypto';
import type * as zmq from 'zeromq';
import { fromCaller, readHead, readJson, type ControllerToCaller, type SessionAttached } from '../protocol/messages.js';
import type { SessionProcess } from './session-process.js';

/** How often the wait for the reply looks whether the controller still runs. */
const LOOK_MS = 100;

/** The controller went while this caller attached: the session is to be started anew. */
export class ControllerGoneError extends Error {}

export async function requestAttach(socket: zmq.Pair, controller: SessionProcess, name: string, timeoutMs: number): Promise<SessionAttached> {
  const id = randomInt(1, 2 ** 31); // not an id an earlier caller's request may have had
  await socket.send(fromCaller({ t: 'attach', id, pid: process.pid }));
  socket.receiveTimeout = LOOK_MS;
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      let message: Buffer[];
      try {
        message = await socket.receive();
      } catch (error) {
        if ((error as { code?: string }).code !== 'EAGAIN') throw error;
        if (!controller.alive) throw new ControllerGoneError(`session '${name}' ended while this process attached`);
        if (Date.now() > deadline) throw new Error(`session '${name}' (controller pid ${controller.pid}) did not answer within ${timeoutMs} ms`);
        continue;
      }
      const head = readHead<ControllerToCaller>(message[0]);
      if (head.t !== 'reply' || head.id !== id) continue;
      if (!head.ok) throw new Error(`session '${name}' refused to attach: ${head.error}`);
      return readJson<SessionAttached>(message[1], 'attach reply');
    }
  } finally {
    socket.receiveTimeout = -1;
  }
}
