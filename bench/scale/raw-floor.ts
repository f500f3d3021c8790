/**
 * The floor under the controller's per-server costs: a bare ZeroMQ ROUTER (what the controller
 * listens with) and as many DEALERs dialling it as there are servers, with no code of ours. It
 * measures what the ROUTER's process gains in resident memory per connection after the same
 * traffic as a server's join and a round of jobs (a few small messages each way), and its CPU
 * while it pings every peer once per heartbeat and reads each answer.
 *
 * Run as `node raw-floor.js router <connections> <exchanges> <idle s> <heartbeat ms>` by measureRawFloor(),
 * which starts the dealers itself (`… dealers <connections> <endpoint>`).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { residentBytes } from '../proc.js';

const script = fileURLToPath(import.meta.url);

export interface RawFloor {
  connections: number;
  /** Messages each way per connection before memory was read (a server's join, hello, welcome, worker-ups, a round of jobs and results). */
  exchanges: number;
  /** Resident memory the ROUTER's process gained per connection. */
  bytesPerConnection: number;
  /** Its CPU while idle with a ping and an answer per connection per heartbeat, as a share of one core. */
  idleCore: number;
}

/** Runs the floor in two processes of its own and returns what the ROUTER's measured. */
export function measureRawFloor(connections: number, exchanges: number, idleSeconds: number, heartbeatMs: number): Promise<RawFloor> {
  return new Promise((resolve, reject) => {
    const router = fork(script, ['router', String(connections), String(exchanges), String(idleSeconds), String(heartbeatMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    router.once('message', (floor: RawFloor) => {
      resolve(floor);
      router.kill();
    });
    router.once('exit', (code) => reject(new Error(`raw floor exited with ${code} before it measured`)));
  });
}

async function runRouter(connections: number, exchanges: number, idleSeconds: number, heartbeatMs: number): Promise<void> {
  const router = new zmq.Router({ linger: 0 });
  await router.bind('tcp://127.0.0.1:0');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = residentBytes(process.pid);
  const dealers = fork(script, ['dealers', String(connections), router.lastEndpoint!], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const peers: Buffer[] = [];
    while (peers.length < connections) peers.push((await router.receive())[0]!);
    for (let round = 1; round < exchanges; round++) {
      for (const peer of peers) await router.send([peer, '{"t":"ping","n":0}']);
      for (let i = 0; i < connections; i++) await router.receive();
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const bytesPerConnection = (residentBytes(process.pid) - before) / connections;
    const cpu = process.cpuUsage();
    const started = performance.now();
    while (performance.now() - started < idleSeconds * 1000) {
      const beat = performance.now();
      for (const peer of peers) await router.send([peer, `{"t":"ping","n":${Date.now()}}`]);
      for (let i = 0; i < connections; i++) await router.receive();
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, heartbeatMs - (performance.now() - beat))));
    }
    const used = process.cpuUsage(cpu);
    const idleCore = (used.user + used.system) / 1000 / (performance.now() - started);
    process.send!({ connections, exchanges, bytesPerConnection, idleCore } satisfies RawFloor);
  } finally {
    dealers.kill();
  }
}

async function runDealers(connections: number, endpoint: string): Promise<void> {
  zmq.context.maxSockets = 65_536;
  const sockets = Array.from({ length: connections }, (_, i) => {
    const dealer = new zmq.Dealer({ routingId: `peer-${i}`, linger: 0 });
    dealer.connect(endpoint);
    return dealer;
  });
  await Promise.all(
    sockets.map(async (dealer) => {
      await dealer.send('{"t":"join","v":5}');
      for await (const [ping] of dealer) await dealer.send(`{"t":"pong","n":${JSON.parse(ping!.toString()).n}}`);
    }),
  );
}

const [role, count, a, b, c] = process.argv.slice(2);
// Each goes with the process that started it.
if (process.argv[1] === script) process.on('disconnect', () => process.exit(0));
if (process.argv[1] === script && role === 'router') await runRouter(Number(count), Number(a), Number(b), Number(c));
else if (process.argv[1] === script && role === 'dealers') await runDealers(Number(count), a!);
