/**
 * The load generator as the bench sees it: a fleet of simulated servers spread over a few
 * processes (sim-process.ts), each server dialling every controller given. `SimFleet.start`
 * resolves once every process has started its servers and they have begun dialling.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { YOUNG_GENERATION_FLAGS } from '../../../runtime/v8-flags.js';
import type { KeyPair } from '../../../protocol/keys.js';
import type { SimReply, SimRequest, SimServerSpec } from './sim-messages.js';

const script = fileURLToPath(new URL('./sim-process.js', import.meta.url));

export interface FleetSpec {
  servers: SimServerSpec[];
  /** Listen addresses of the controllers every server dials. */
  controllers: string[];
  /** Processes the servers are spread over (round robin). */
  processes: number;
  /** A refreshed worker comes up after [low, high] ms (default: a spare promoted, 15–30 ms). */
  reforkMs?: [number, number];
  curve?: { keyPair: KeyPair; controllerKey: string };
}

/** `count` servers of `workers` workers each, named sim-<first>, sim-<first+1>, …. */
export function serversOf(count: number, workers: number, first = 1): SimServerSpec[] {
  return Array.from({ length: count }, (_, i) => ({ id: `sim-${first + i}`, workers }));
}

class SimProcess {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(reply: SimReply): void; reject(error: Error): void }>();

  constructor(readonly child: ChildProcess) {
    child.on('message', (reply: SimReply) => {
      const waiter = this.waiting.get(reply.seq);
      this.waiting.delete(reply.seq);
      if (reply.t === 'failed') waiter?.reject(new Error(`simulated servers failed: ${reply.reason}`));
      else waiter?.resolve(reply);
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`simulated-server process exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  ask<T extends SimReply['t']>(request: DistributiveOmit<SimRequest, 'seq'>): Promise<Extract<SimReply, { t: T }>> {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve: resolve as (reply: SimReply) => void, reject });
      this.child.send({ ...request, seq });
    });
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class SimFleet {
  private constructor(
    private readonly processes: SimProcess[],
    private readonly home: Map<string, SimProcess>,
    /** When the first server started dialling (epoch ms). */
    readonly dialAt: number,
    readonly workers: number,
    /** Where the servers that listen are bound, by id. */
    readonly endpoints: Record<string, string>,
  ) {}

  static async start(spec: FleetSpec): Promise<SimFleet> {
    const count = Math.max(1, Math.min(spec.processes, spec.servers.length));
    const processes = Array.from({ length: count }, () => new SimProcess(fork(script, [], { execArgv: [...YOUNG_GENERATION_FLAGS], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })));
    const home = new Map<string, SimProcess>();
    const shares: SimServerSpec[][] = processes.map(() => []);
    spec.servers.forEach((server, i) => {
      shares[i % count]!.push(server);
      home.set(server.id, processes[i % count]!);
    });
    const started = await Promise.all(
      processes.map((p, i) => p.ask<'started'>({ t: 'start', servers: shares[i]!, controllers: spec.controllers, reforkMs: spec.reforkMs ?? [15, 30], curve: spec.curve })),
    );
    return new SimFleet(
      processes,
      home,
      Math.min(...started.map((s) => s.dialAt)),
      started.reduce((n, s) => n + s.workers, 0),
      Object.assign({}, ...started.map((s) => s.endpoints)),
    );
  }

  get pids(): number[] {
    return this.processes.map((p) => p.child.pid!);
  }

  /** Server `id` goes quiet; resolves with when (epoch ms) and how many jobs it held. */
  async silence(id: string): Promise<{ at: number; held: number }> {
    const reply = await this.processOf(id).ask<'silenced'>({ t: 'silence', id });
    return { at: reply.at, held: reply.held };
  }

  /** Ids of the jobs lost with quiet server `id`: those it held, and those sent to it since. */
  async lost(id: string): Promise<number[]> {
    return (await this.processOf(id).ask<'lost'>({ t: 'lost', id })).ids;
  }

  /** Milliseconds of lateness the simulated workers dropped, over all processes: the generator's own limit. */
  async lagMs(): Promise<number> {
    const replies = await Promise.all(this.processes.map((p) => p.ask<'lag'>({ t: 'lag' })));
    return replies.reduce((sum, r) => sum + r.lagMs, 0);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.processes.map(async (p) => {
        if (p.child.exitCode !== null || p.child.signalCode !== null) return;
        const exited = once(p.child, 'exit');
        await p.ask<'stopped'>({ t: 'stop' }).catch(() => undefined);
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      }),
    );
  }

  private processOf(id: string): SimProcess {
    const process = this.home.get(id);
    if (!process) throw new Error(`no simulated server named ${id}`);
    return process;
  }
}
