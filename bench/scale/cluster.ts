/**
 * What every scale measurement stands on: a real controller (spawnScatterGather, listening for
 * servers that dial in), and the servers that dial it: simulated ones (sim/fleet.ts) or real
 * `tsgather server --connect` processes, each with its workers. The controller's own process is
 * measured from /proc; which workers are up is followed through the caller's events.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { spawnScatterGather, type ScatterGather } from '../../caller/index.js';
import type { ControllerEvent } from '../../protocol/status.js';
import { YOUNG_GENERATION_FLAGS } from '../../runtime/v8-flags.js';
import { cpuTicks, descendants } from '../proc.js';
import { serversOf, SimFleet, type FleetSpec } from './sim/fleet.js';

const cli = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
export const SIM_FUNCTIONS = fileURLToPath(new URL('./sim/sim-functions.js', import.meta.url));

export interface ControllerSettings {
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  /** Listen on this port (default: any free one). */
  port?: number;
  /** Environment for the controller child only (a preload in NODE_OPTIONS, say): set while it is forked. */
  env?: Record<string, string>;
}

/** Workers up on the controller, as its events tell the caller. */
export class WorkerWatch {
  readonly up = new Set<string>();
  readonly servers = new Set<string>();
  private waiters: Array<{ n: number; resolve(at: number): void }> = [];

  constructor(sg: ScatterGather) {
    sg.on('event', (event: ControllerEvent) => {
      const { kind, detail } = event;
      if (kind === 'worker-up') this.up.add(`${detail.server}/${detail.w}`);
      else if (kind === 'worker-down') this.up.delete(`${detail.server}/${detail.w}`);
      else if (kind === 'server-up') this.servers.add(detail.server);
      else if (kind === 'server-down') this.servers.delete(detail.server);
      if (kind === 'worker-up' && this.waiters.length > 0) {
        const now = Date.now();
        const due = this.waiters.filter((waiter) => this.up.size >= waiter.n);
        this.waiters = this.waiters.filter((waiter) => this.up.size < waiter.n);
        for (const waiter of due) waiter.resolve(now);
      }
    });
  }

  /** Resolves with when (epoch ms) `n` workers were up, or rejects after `timeoutMs`. */
  until(n: number, timeoutMs: number): Promise<number> {
    if (this.up.size >= n) return Promise.resolve(Date.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.up.size} of ${n} workers came up within ${timeoutMs / 1000} s`)), timeoutMs);
      this.waiters.push({
        n,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      });
    });
  }
}

export interface Controller {
  sg: ScatterGather;
  pid: number;
  address: string;
  watch: WorkerWatch;
}

export async function openController(settings: ControllerSettings = {}): Promise<Controller> {
  const saved = Object.keys(settings.env ?? {}).map((name) => [name, process.env[name]] as const);
  Object.assign(process.env, settings.env);
  let sg: ScatterGather;
  try {
    sg = await spawnScatterGather([], {
      listen: `tcp://127.0.0.1:${settings.port ?? 0}`,
      embedded: false,
      echo: false,
      progress: false,
      heartbeatMs: settings.heartbeatMs,
      heartbeatTimeoutMs: settings.heartbeatTimeoutMs,
      logLevel: 'error',
    });
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  const pid = (sg as unknown as { child: ChildProcess }).child.pid!;
  return { sg, pid, address: sg.listenAddress!, watch: new WorkerWatch(sg) };
}

/** Servers dialling a controller, simulated or real, with the processes they run in. */
export interface Servers {
  /** When they started dialling (epoch ms). */
  dialAt: number;
  workers: number;
  /** Processes whose CPU counts as the servers' (and their workers'). */
  pids(): number[];
  stop(): Promise<void>;
}

export async function simServers(spec: FleetSpec): Promise<Servers & { fleet: SimFleet }> {
  const fleet = await SimFleet.start(spec);
  return { fleet, dialAt: fleet.dialAt, workers: fleet.workers, pids: () => fleet.pids, stop: () => fleet.stop() };
}

/** A free TCP port on loopback, for a controller that real servers dial before it listens. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  return port;
}

export interface RealServers extends Servers {
  processes: ChildProcess[];
}

/**
 * `count` real servers of `workers` workers each, dialling `address` (or each of several), started and ready before this
 * resolves (each logs 'server ready' once its workers are up, whether or not the controller listens
 * yet). dialAt is then: they keep dialling until a controller answers.
 */
export async function realServers(count: number, workers: number, address: string | string[], spares = 1, prefix = 'real'): Promise<RealServers> {
  const processes: ChildProcess[] = [];
  const ready: Array<Promise<void>> = [];
  for (let i = 1; i <= count; i++) {
    const connect = [address].flat().flatMap((url) => ['--connect', url]);
    const args = [
      'server',
      ...connect,
      '--workers',
      String(workers),
      '--spare-workers',
      String(spares),
      '--module',
      SIM_FUNCTIONS,
      '--name',
      `${prefix}-${i}`,
      '--drain-seconds',
      '0',
      '--log-level',
      'info',
    ];
    const child = spawn(process.execPath, [...YOUNG_GENERATION_FLAGS, cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    processes.push(child);
    ready.push(
      new Promise((resolve, reject) => {
        let log = '';
        const onData = (text: string) => {
          log = (log + text).slice(-4000);
          if (log.includes('"server ready"')) {
            child.stderr!.off('data', onData);
            child.stderr!.resume();
            resolve();
          }
        };
        child.stderr!.setEncoding('utf8').on('data', onData);
        child.once('exit', (code) => reject(new Error(`real server ${i} exited with ${code}: ${log}`)));
      }),
    );
  }
  await Promise.all(ready);
  const pids = () => processes.flatMap((child) => [child.pid!, ...descendants(child.pid!)]);
  return {
    processes,
    dialAt: Date.now(),
    workers: count * workers,
    pids,
    stop: async () => {
      const all = pids();
      await Promise.all(
        processes.map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = once(child, 'exit');
          child.kill('SIGCONT'); // one stopped to go quiet must run again to act on SIGTERM
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }),
      );
      // Workers and spares of a server that was killed: ours to end.
      for (const pid of all) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone with its server
        }
      }
    },
  };
}

/** CPU seconds of some processes (their own, not their reaped children's). */
export function cpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuTicks(pid, true), 0) / 100;
}

export const selfCpuSeconds = () => cpuTicks('self', true) / 100;

export interface ClusterSpec {
  kind: 'sim' | 'real';
  servers: number;
  workersEach: number;
  processes: number;
  settings?: ControllerSettings;
}

/** A controller with `spec`'s servers joined (every worker up), for the length of `work`. */
export async function withCluster<T>(spec: ClusterSpec, work: (controller: Controller, servers: Servers) => Promise<T>): Promise<T> {
  let controller: Controller;
  let servers: Servers;
  if (spec.kind === 'sim') {
    controller = await openController(spec.settings);
    servers = await simServers({ servers: serversOf(spec.servers, spec.workersEach), controllers: [controller.address], processes: spec.processes });
  } else {
    const port = await freePort();
    servers = await realServers(spec.servers, spec.workersEach, `tcp://127.0.0.1:${port}`);
    controller = await openController({ ...spec.settings, port });
  }
  try {
    await controller.watch.until(spec.servers * spec.workersEach, 60_000);
    return await work(controller, servers);
  } finally {
    await controller.sg.close();
    await servers.stop();
  }
}
