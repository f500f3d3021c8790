/**
 * One size of cluster, measured on one fresh controller: how long its servers take to join and to
 * serve (a connect storm), how long status() takes, what the controller costs while idle (the
 * heartbeats), and its CPU per tiny job with instant workers.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, sleep } from '../stats.js';
import { noArgItems } from '../engine/session.js';
import { cpuSeconds, openController, realServers, selfCpuSeconds, simServers, freePort, type Controller, type Servers } from './cluster.js';
import { serversOf } from './sim/fleet.js';

export interface SizeSpec {
  /** Column label, e.g. '500 × 8 sim'. */
  label: string;
  kind: 'sim' | 'real';
  servers: number;
  workersEach: number;
  /** Processes the simulated servers are spread over. */
  processes: number;
}

export interface SizeFigures {
  label: string;
  kind: 'sim' | 'real';
  servers: number;
  workers: number;
  /** From when the servers start dialling until every worker is up on the controller, and until every server answered a job. */
  joinMs: number;
  servingMs: number;
  statusMs: number;
  /** Bytes of status() as JSON. */
  statusBytes: number;
  /** CPU of the controller while idle, as a share of one core; and of the servers' processes. */
  idleControllerCore: number;
  idleServersCore: number;
  tiny: TinyRun[];
  /** Milliseconds of lateness the simulated workers dropped during the tiny-job runs. */
  lagMs?: number;
}

export interface TinyRun {
  jobs: number;
  seconds: number;
  controllerCpu: number;
  callerCpu: number;
  serversCpu: number;
}

export interface SizeSettings {
  tinyJobs: number;
  tinyRuns: number;
  idleSeconds: number;
  statusCalls: number;
  /** Profile the controller (V8's sampling profiler, all its life) into this directory. */
  profileDir?: string;
}

const preload = fileURLToPath(new URL('../profiling/preload.js', import.meta.url));

/** Asks the profiled controller for its profile and waits until it is written. */
async function writeProfile(controller: Controller, directory: string): Promise<void> {
  const file = join(directory, `controller-${controller.pid}.cpuprofile`);
  process.kill(controller.pid, 'SIGUSR2');
  const deadline = Date.now() + 15_000;
  while (!existsSync(file) && Date.now() < deadline) await sleep(50);
}

export async function measureSize(spec: SizeSpec, settings: SizeSettings, log: (line: string) => void): Promise<SizeFigures> {
  const workers = spec.servers * spec.workersEach;
  let controller: Controller;
  let servers: Servers;
  const profiling = settings.profileDir ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${preload}`.trim(), BENCH_PROFILE_DIR: settings.profileDir } : undefined;
  if (spec.kind === 'sim') {
    controller = await openController({ env: profiling });
    servers = await simServers({ servers: serversOf(spec.servers, spec.workersEach), controllers: [controller.address], processes: spec.processes });
  } else {
    // Real servers start (a Node start-up each, and their workers') before the controller listens: the storm is them reconnecting.
    const port = await freePort();
    servers = await realServers(spec.servers, spec.workersEach, `tcp://127.0.0.1:${port}`);
    controller = await openController({ port, env: profiling });
    servers.dialAt = Date.now();
  }
  try {
    const joinedAt = await controller.watch.until(workers, 60_000);
    // A job of 5 ms for each worker: jobs that long are spread one to a worker (shorter ones go two or more to a message).
    const round = await controller.sg.mapResults(
      'sleep',
      Array.from({ length: workers }, () => [[5]] as [number[]]),
    );
    const servingMs = Date.now() - servers.dialAt;
    const answered = new Set(round.map((r) => r.worker.server));
    if (answered.size < spec.servers) log(`${spec.label}: only ${answered.size} of ${spec.servers} servers answered the first round`);
    log(`${spec.label}: joined in ${joinedAt - servers.dialAt} ms, serving in ${servingMs} ms`);

    const statusTimes: number[] = [];
    let statusBytes = 0;
    for (let i = 0; i < settings.statusCalls; i++) {
      const started = performance.now();
      const status = await controller.sg.status();
      statusTimes.push(performance.now() - started);
      statusBytes = JSON.stringify(status).length;
    }

    await sleep(1000); // the round's traffic is over
    const idleFrom = { at: performance.now(), controller: cpuSeconds([controller.pid]), servers: cpuSeconds(servers.pids()) };
    await sleep(settings.idleSeconds * 1000);
    const idleSeconds = (performance.now() - idleFrom.at) / 1000;
    const idleControllerCore = (cpuSeconds([controller.pid]) - idleFrom.controller) / idleSeconds;
    const idleServersCore = (cpuSeconds(servers.pids()) - idleFrom.servers) / idleSeconds;
    log(`${spec.label}: status() ${median(statusTimes).toFixed(1)} ms (${Math.round(statusBytes / 1024)} KB); idle controller ${(idleControllerCore * 100).toFixed(2)}% of a core`);

    const lagBefore = 'fleet' in servers ? await (servers as Awaited<ReturnType<typeof simServers>>).fleet.lagMs() : 0;
    const tiny = await tinyRuns(controller, servers, settings);
    const lagMs = 'fleet' in servers ? (await (servers as Awaited<ReturnType<typeof simServers>>).fleet.lagMs()) - lagBefore : undefined;
    const perJob = median(tiny.map((r) => (r.controllerCpu * 1e6) / r.jobs));
    log(`${spec.label}: tiny jobs ${Math.round(median(tiny.map((r) => r.jobs / r.seconds))).toLocaleString('en')} jobs/s, controller ${perJob.toFixed(2)} µs CPU per job`);
    return {
      label: spec.label,
      kind: spec.kind,
      servers: spec.servers,
      workers,
      joinMs: joinedAt - servers.dialAt,
      servingMs,
      statusMs: median(statusTimes),
      statusBytes,
      idleControllerCore,
      idleServersCore,
      tiny,
      lagMs,
    };
  } finally {
    if (settings.profileDir) await writeProfile(controller, settings.profileDir);
    await controller.sg.close();
    await servers.stop();
  }
}

async function tinyRuns(controller: Controller, servers: Servers, settings: SizeSettings): Promise<TinyRun[]> {
  const items = noArgItems(settings.tinyJobs);
  await controller.sg.map('noop', items); // warm-up: JIT, and the controller learns the run time
  const runs: TinyRun[] = [];
  for (let i = 0; i < settings.tinyRuns; i++) {
    const pids = servers.pids();
    const before = { at: performance.now(), controller: cpuSeconds([controller.pid]), caller: selfCpuSeconds(), servers: cpuSeconds(pids) };
    const results = await controller.sg.map('noop', items);
    if (results.length !== items.length) throw new Error(`map gave ${results.length} results for ${items.length} jobs`);
    runs.push({
      jobs: items.length,
      seconds: (performance.now() - before.at) / 1000,
      controllerCpu: cpuSeconds([controller.pid]) - before.controller,
      callerCpu: selfCpuSeconds() - before.caller,
      serversCpu: cpuSeconds(pids) - before.servers,
    });
  }
  return runs;
}
