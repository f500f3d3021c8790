/** The caller's dispatch of what its controller sends: each kind of message to the part of the pool that takes it. */
import { readHead, textFrame, type ControllerEvent, type ControllerToCaller } from '../protocol/index.js';
import type { JobOutput } from './types.js';

export interface ControllerMessageHandlers {
  results(head: Extract<ControllerToCaller, { t: 'results' }>, message: Buffer[]): void;
  output(output: JobOutput): void;
  event(event: ControllerEvent): void;
  reply(head: Extract<ControllerToCaller, { t: 'reply' }>, message: Buffer[]): void;
  parts(head: Extract<ControllerToCaller, { t: 'parts' }>, message: Buffer[]): void;
  ready(head: Extract<ControllerToCaller, { t: 'ready' }>): void;
}

export function dispatchFromController(message: Buffer[], to: ControllerMessageHandlers): void {
  const head = readHead<ControllerToCaller>(message[0]);
  switch (head.t) {
    case 'results':
      return to.results(head, message);
    case 'output':
      return to.output({ job: head.job, worker: head.w, server: head.server, host: head.host, stream: head.stream, text: textFrame(message[1], 'output') });
    case 'event': {
      const { t: _, ...event } = head;
      return to.event(event as ControllerEvent);
    }
    case 'reply':
      return to.reply(head, message);
    case 'parts':
      return to.parts(head, message);
    case 'ready':
      return to.ready(head);
  }
}
