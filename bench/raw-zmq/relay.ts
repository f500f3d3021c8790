/**
 * The relay of the "raw via relay" column: a process between the bench and the raw workers that
 * only forwards frames, the way tsgather's controller sits between the caller and the workers.
 * Caller side: a PAIR; worker side: a ROUTER. A message keeps its first frame (the worker's
 * name) both ways, so the bench speaks to it exactly as it speaks to the workers directly.
 */
import * as zmq from 'zeromq';
import { SendQueue } from './send-queue.js';

const [callerEndpoint, workerEndpoint] = process.argv.slice(2);
if (!callerEndpoint || !workerEndpoint) throw new Error('usage: relay.js <caller endpoint> <worker endpoint>');

const caller = new zmq.Pair({ linger: 0 });
const workers = new zmq.Router({ linger: 0, mandatory: true });
const toCaller = new SendQueue(caller);
const toWorkers = new SendQueue(workers);

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

await workers.bind(workerEndpoint);
caller.connect(callerEndpoint);
toCaller.post(['', 'relay-ready']);

async function forward(from: zmq.Readable & zmq.Socket, to: SendQueue): Promise<void> {
  try {
    for await (const message of from) to.post(message);
  } catch (error) {
    if (!from.closed) throw error;
  }
}

await Promise.all([forward(caller, toWorkers), forward(workers, toCaller)]);
