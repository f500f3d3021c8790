/**
 * The "limit" columns: the least a Node ZeroMQ scatter/gather can do. A ROUTER in this process
 * feeds N worker processes (DEALERs over ipc://) batches of no-op jobs with a small credit window;
 * one hop, JSON batches, no controller, no per-job bookkeeping beyond a counter.
 *
 * Its processes start with the engine's V8 flags and malloc tunables, so both sides run with the
 * same settings.
 *
 * With `relay`, a forwarding process (relay.ts) sits between this process and the workers, as
 * tsgather's controller does between the caller and the workers: the least any design with a
 * process in the middle can do.
 */
import * as zmq from 'zeromq';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ipcEndpoint } from '../../protocol/transport.js';
import { YOUNG_GENERATION_FLAGS } from '../../runtime/v8-flags.js';
import { withMallocTunables } from '../../runtime/malloc-tunables.js';
import { SendQueue } from './send-queue.js';

const workerScript = fileURLToPath(new URL('./worker.js', import.meta.url));
const relayScript = fileURLToPath(new URL('./relay.js', import.meta.url));

type Handler = (worker: string, kind: string, body: Buffer) => void;

interface RawWorker {
  name: string;
  child: ChildProcess;
  pid: number;
}

export class RawPipeline {
  /** To the workers: a ROUTER they connect to, or a PAIR to the relay that holds that ROUTER. */
  private readonly socket: zmq.Router | zmq.Pair;
  private readonly out: SendQueue;
  private readonly endpoint = ipcEndpoint('bench-raw');
  private relay?: ChildProcess;
  private workers: RawWorker[] = [];
  private handler: Handler = () => {};
  private generation = 0;

  private constructor(
    private readonly size: number,
    relay: boolean,
  ) {
    this.socket = relay ? new zmq.Pair({ linger: 0 }) : new zmq.Router({ linger: 0, mandatory: true });
    this.out = new SendQueue(this.socket);
  }

  /** Binds (and starts the relay), forks the workers and waits until each has said it is ready. */
  static async start(size: number, options: { relay?: boolean } = {}): Promise<RawPipeline> {
    const pipeline = new RawPipeline(size, options.relay ?? false);
    if (options.relay) await pipeline.startRelay();
    else await pipeline.socket.bind(pipeline.endpoint);
    void pipeline.receive();
    await pipeline.forkAll();
    return pipeline;
  }

  /** The relay binds the workers' endpoint and connects to ours; its first message says it has. */
  private async startRelay(): Promise<void> {
    const callerEndpoint = ipcEndpoint('bench-relay');
    await this.socket.bind(callerEndpoint);
    this.relay = spawn(process.execPath, [...YOUNG_GENERATION_FLAGS, relayScript, callerEndpoint, this.endpoint], { stdio: ['pipe', 'inherit', 'inherit'], env: withMallocTunables(process.env) });
    this.relay.stdin!.on('error', () => {});
    const [, kind] = await this.socket.receive();
    if (kind?.toString() !== 'relay-ready') throw new Error('the raw relay did not start');
  }

  /** Sends `jobs` no-op jobs in batches of `batch`, `window` batches in flight per worker; resolves when all results are in. */
  runBatched(jobs: number, batch: number, window: number): Promise<void> {
    return new Promise((resolve) => {
      let nextId = 0;
      let received = 0;
      const sendBatch = (worker: string) => {
        if (nextId >= jobs) return;
        const count = Math.min(batch, jobs - nextId);
        const items = new Array<[number, unknown[]]>(count);
        for (let i = 0; i < count; i++) items[i] = [nextId++, []];
        this.out.post([worker, 'jobs', JSON.stringify(items)]);
      };
      this.handler = (worker, kind, body) => {
        if (kind !== 'results') return;
        received += (JSON.parse(body.toString()) as unknown[]).length;
        if (received >= jobs) return resolve();
        sendBatch(worker);
      };
      for (let round = 0; round < window; round++) for (const { name } of this.workers) sendBatch(name);
    });
  }

  /**
   * Runs `jobs` CPU-bound jobs (workload 3), one to a message, keeping `window` of them queued at
   * each worker and sending the next as each result comes back: tsgather's window for jobs this long.
   */
  runSpins(jobs: number, iterations: number, window: number): Promise<void> {
    return new Promise((resolve) => {
      let nextId = 0;
      let received = 0;
      const sendSpin = (worker: string) => {
        if (nextId < jobs) this.out.post([worker, 'spin', JSON.stringify([nextId++, iterations])]);
      };
      this.handler = (worker, kind) => {
        if (kind !== 'spun') return;
        if (++received >= jobs) return resolve();
        sendSpin(worker);
      };
      for (let round = 0; round < window; round++) for (const { name } of this.workers) sendSpin(name);
    });
  }

  /** One job on one worker, there and back. */
  roundTrip(worker = 0): Promise<void> {
    return this.ask(this.workers[worker]!.name, ['jobs', '[[0,[]]]'], 'results').then(() => undefined);
  }

  /** Sends a binary frame to a worker and resolves with the frame it sends back. */
  echo(bytes: Uint8Array, worker = 0): Promise<Buffer> {
    return this.ask(this.workers[worker]!.name, ['echo', bytes], 'echo');
  }

  /** Kills every worker, forks replacements, and resolves once each replacement has answered a job. */
  async refresh(): Promise<void> {
    for (const { child } of this.workers) child.kill('SIGKILL');
    await this.forkAll();
    for (let i = 0; i < this.workers.length; i++) await this.roundTrip(i);
  }

  async close(): Promise<void> {
    for (const { child } of this.workers) child.kill('SIGKILL');
    this.relay?.kill('SIGKILL');
    this.socket.close();
  }

  private ask(worker: string, message: Array<string | Uint8Array>, answer: string): Promise<Buffer> {
    return new Promise((resolve) => {
      this.handler = (from, kind, body) => {
        if (from === worker && kind === answer) resolve(body);
      };
      this.out.post([worker, ...message]);
    });
  }

  private forkAll(): Promise<void> {
    const generation = ++this.generation;
    return new Promise((resolve) => {
      const waiting = new Set<string>();
      this.workers = Array.from({ length: this.size }, (_, i) => {
        const name = `g${generation}w${i}`;
        waiting.add(name);
        const child = spawn(process.execPath, [...YOUNG_GENERATION_FLAGS, workerScript, this.endpoint, name], { stdio: ['pipe', 'inherit', 'inherit'], env: withMallocTunables(process.env) });
        child.stdin!.on('error', () => {});
        return { name, child, pid: child.pid ?? -1 };
      });
      this.handler = (worker, kind) => {
        if (kind !== 'ready') return;
        waiting.delete(worker);
        if (waiting.size === 0) resolve();
      };
    });
  }

  private async receive(): Promise<void> {
    try {
      for await (const [worker, kind, body] of this.socket) this.handler(worker!.toString(), kind!.toString(), body ?? Buffer.alloc(0));
    } catch (error) {
      if (!this.socket.closed) throw error;
    }
  }
}
