/**
 * A raw ZeroMQ worker for the "limit" column: a DEALER that runs batches of no-op jobs, single
 * CPU-bound jobs, and echoes binary frames, with nothing else in the way (no codec, no relay, no
 * output capture).
 */
import * as zmq from 'zeromq';
import { spin } from '../engine/job-functions.js';

const [endpoint, name] = process.argv.slice(2);
if (!endpoint || !name) throw new Error('usage: worker.js <endpoint> <name>');

const socket = new zmq.Dealer({ routingId: name, linger: 0 });
socket.connect(endpoint);
const noop = (..._args: unknown[]): null => null;

// The server holds our stdin: when the bench goes, so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

await socket.send(['ready', String(process.pid)]);
for await (const [kind, body] of socket) {
  const what = kind!.toString();
  if (what === 'jobs') {
    const jobs = JSON.parse(body!.toString()) as Array<[number, unknown[]]>;
    const results = new Array<[number, unknown]>(jobs.length);
    for (let i = 0; i < jobs.length; i++) results[i] = [jobs[i]![0], noop(...jobs[i]![1])];
    await socket.send(['results', JSON.stringify(results)]);
  } else if (what === 'spin') {
    const [id, iterations] = JSON.parse(body!.toString()) as [number, number];
    await socket.send(['spun', JSON.stringify([id, spin(iterations)])]);
  } else if (what === 'echo') {
    await socket.send(['echo', body!]);
  } else if (what === 'stop') {
    break;
  }
}
socket.close();
process.exit(0);
