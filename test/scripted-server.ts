/**
 * A test peer that dials a real controller's listen port and speaks the server's side of the
 * protocol over real ZeroMQ, with workers that run nothing: the test answers the jobs they get
 * with result rows of its own making (folded acks, partials, stray or malformed rows), workers go
 * and come as it says, and what the real controller makes of it is seen at the caller.
 */
import { after, before } from 'node:test';
import * as zmq from 'zeromq';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { PROTOCOL_VERSION, type RowKind, WorkerRowWriter } from '../protocol/index.js';

const SERVER = { id: 'scripted', host: 'scripted-host', pid: 4242, functions: [] };

export interface SentJobs {
  /** The ids sent to the worker since last asked, in order. */
  ids: number[];
  /** The first run's fold tag (mapReduce onServers), if any. */
  fold: unknown;
}

export class ScriptedServer {
  private readonly socket = new zmq.Dealer({ linger: 0 });
  /** Jobs sent to each worker, not yet taken by jobs(). */
  private readonly runs = new Map<number, SentJobs[]>();
  private wake: (() => void) | undefined;

  constructor(endpoint: string) {
    this.socket.connect(endpoint);
    void this.serve();
  }

  private send(head: object): Promise<void> {
    return this.socket.send(JSON.stringify(head));
  }

  private async serve(): Promise<void> {
    await this.send({ t: 'join', v: PROTOCOL_VERSION, server: SERVER });
    try {
      for await (const [head, runs] of this.socket) {
        const message = JSON.parse(head!.toString()) as { t: string; n?: number; w?: number };
        if (message.t === 'hello') {
          await this.send({ t: 'welcome', v: PROTOCOL_VERSION, server: SERVER, workers: [], size: 1 });
          await this.workerUp(1);
        } else if (message.t === 'ping') await this.send({ t: 'pong', n: message.n });
        else if (message.t === 'jobs') {
          const sent = this.runs.get(message.w!) ?? [];
          this.runs.set(message.w!, sent);
          for (const [first, count, , , , , fold] of JSON.parse(runs!.toString()) as Array<[number, number, string, number, number, number?, unknown?]>) {
            sent.push({ ids: Array.from({ length: count }, (_, i) => first + i), fold });
          }
          this.wake?.();
        }
      }
    } catch {
      // closed
    }
  }

  workerUp(w: number): Promise<void> {
    return this.send({ t: 'worker-up', w, pid: 4242 + w, functions: [] });
  }

  /** Worker `w` died (as a crash): the controller takes back what it held. */
  workerDown(w: number): Promise<void> {
    return this.send({ t: 'worker-down', w, pid: 4242 + w, cause: 'crash', code: null, signal: 'SIGKILL' });
  }

  /** The jobs sent to worker `w` since last asked, waiting for some (and until there are `atLeast`). */
  async jobs(w = 1, atLeast = 1): Promise<SentJobs> {
    const count = () => (this.runs.get(w) ?? []).reduce((n, run) => n + run.ids.length, 0);
    while (count() < atLeast) await new Promise<void>((resolve) => (this.wake = resolve));
    const runs = this.runs.get(w)!.splice(0);
    return { ids: runs.flatMap((run) => run.ids), fold: runs[0]!.fold };
  }

  /** A results message from worker `w`: rows of [job, kind, value (JSON text)], each ok. */
  async results(rows: Array<[number, number, string]>, w = 1): Promise<void> {
    const writer = new WorkerRowWriter();
    for (const [job, kind] of rows) writer.add(job, true, 0, 0, Date.now(), 1, 1, true, kind as RowKind);
    const bytes = writer.bytes();
    await this.socket.send([JSON.stringify({ t: 'results', w }), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), `[${rows.map(([, , value]) => value).join(',')}]`, '[]']);
  }

  close(): void {
    this.socket.close();
  }
}

/** A pool (a real caller and controller) whose only server is a ScriptedServer, once its worker 1 is up. */
export async function scriptedPool(): Promise<{ sg: ScatterGather; peer: ScriptedServer }> {
  const sg = await spawnScatterGather([], { embedded: false, listen: 'tcp://127.0.0.1:*', echo: false, progress: false, heartbeatMs: 200, heartbeatTimeoutMs: 5000 });
  await sg.define('square', (x: number) => x * x);
  const up = new Promise<void>((resolve) => {
    const listener = ({ kind }: { kind: string }) => {
      if (kind !== 'worker-up') return;
      sg.off('event', listener);
      resolve();
    };
    sg.on('event', listener);
  });
  const peer = new ScriptedServer(sg.listenAddress!);
  await up;
  return { sg, peer };
}

/** Before the enclosing describe's tests: a pool dialled by a scripted server, handed to `use`; both closed after them. */
export function withScriptedPool(use: (pool: { sg: ScatterGather; peer: ScriptedServer }) => void): void {
  let pool: { sg: ScatterGather; peer: ScriptedServer } | undefined;
  before(async () => {
    pool = await scriptedPool();
    use(pool);
  });
  after(async () => {
    pool?.peer.close();
    await pool?.sg.close();
  });
}
