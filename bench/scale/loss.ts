/**
 * A server with 100 workers goes quiet in the middle of a run: how long until every job it held
 * (and every job sent to it since) was back in the controller's queue, sent to another worker,
 * and running there. The simulated server stops reading and sending; a real one is stopped with
 * SIGSTOP, as a frozen or cut-off machine would be. The jobs are `sleep` jobs.
 *
 * With a backlog, every worker stays busy throughout and the simulated server says which jobs it
 * lost. Without one (real servers, which cannot say), one job goes to each worker at once, the
 * server goes quiet while they run, and the lost jobs are those sent again after it did.
 */
import type { JobResult } from '../../caller/index.js';
import { openController, realServers, simServers, freePort, type Controller } from './cluster.js';
import { serversOf } from './sim/fleet.js';

export interface LossSpec {
  label: string;
  kind: 'sim' | 'real';
  /** Servers besides the one that goes quiet, and their workers each. */
  servers: number;
  workersEach: number;
  /** Workers of the server that goes quiet. */
  lostWorkers: number;
  processes: number;
  jobMs: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** Keep every worker busy throughout (simulated servers only). */
  backlog: boolean;
}

export interface LossFigures {
  label: string;
  workers: number;
  jobMs: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** Jobs lost with the server (held when it went quiet, or sent to it after). */
  lostJobs: number;
  /**
   * How long the server had been silent when the controller gave it up and put every job of it
   * back in the queue, by the controller's own clock (its server-down reason says): from the
   * server's last message, which came at or before it went quiet.
   */
  requeuedMs: number;
  /** From going quiet until the caller heard of it (the server-down event): the controller's figure plus the caller's lag. */
  eventMs: number;
  /** ...until the last lost job was sent to another worker, and until it was running there. */
  dispatchedMs: number;
  runningMs: number;
}

const QUIET_AFTER_MS = 1500;

export async function measureLoss(spec: LossSpec, log: (line: string) => void): Promise<LossFigures> {
  const settings = { heartbeatMs: spec.heartbeatMs, heartbeatTimeoutMs: spec.heartbeatTimeoutMs };
  const total = spec.servers * spec.workersEach + spec.lostWorkers;
  let controller: Controller;
  if (spec.backlog && spec.kind === 'real') throw new Error('a real server cannot say which jobs it lost: measure it without a backlog');
  let quiet: () => Promise<{ at: number; lost: () => Promise<Set<number> | undefined> }>;
  let stop: () => Promise<void>;
  let lostId: string;
  if (spec.kind === 'sim') {
    controller = await openController(settings);
    lostId = 'sim-lost';
    const servers = [{ id: lostId, workers: spec.lostWorkers }, ...serversOf(spec.servers, spec.workersEach)];
    const sim = await simServers({ servers, controllers: [controller.address], processes: spec.processes });
    stop = () => sim.stop();
    quiet = async () => {
      const { at } = await sim.fleet.silence(lostId);
      return { at, lost: async () => (spec.backlog ? new Set(await sim.fleet.lost(lostId)) : undefined) };
    };
  } else {
    const port = await freePort();
    const lostServer = await realServers(1, spec.lostWorkers, `tcp://127.0.0.1:${port}`, 0, 'lost');
    const others = await realServers(spec.servers, spec.workersEach, `tcp://127.0.0.1:${port}`, 0);
    controller = await openController({ ...settings, port });
    lostId = 'lost-1';
    stop = async () => {
      await lostServer.stop();
      await others.stop();
    };
    quiet = async () => {
      const at = Date.now();
      lostServer.processes[0]!.kill('SIGSTOP');
      return { at, lost: async () => undefined };
    };
  }
  try {
    await controller.watch.until(total, 60_000);
    const { sg } = controller;
    let downAt = 0;
    let silentMs = Number.NaN;
    sg.on('event', ({ kind, detail }) => {
      if (kind !== 'server-down' || downAt) return;
      downAt = Date.now();
      silentMs = Number(/no answer for (\d+) ms/.exec(String(detail.reason))?.[1]);
    });
    // With a backlog, enough work to keep every worker busy until well after the loss is dealt with; without, a job a worker.
    const seconds = (QUIET_AFTER_MS + spec.heartbeatTimeoutMs + spec.heartbeatMs + 2000) / 1000;
    const count = spec.backlog ? Math.ceil((total * seconds * 1000) / spec.jobMs) : total;
    const results: JobResult[] = [];
    sg.addJob(
      'sleep',
      Array.from({ length: count }, () => [[spec.jobMs]] as [number[]]),
    );
    const collecting = (async () => {
      while (results.length < count) results.push(...(await sg.waitForResult({ timeout: 100 })));
    })();
    if (spec.backlog) await new Promise((resolve) => setTimeout(resolve, QUIET_AFTER_MS));
    else while ((await sg.status()).queued > 0); // every job aboard a worker: the quiet server's are running
    const went = await quiet();
    await collecting;
    // Without a backlog nothing is sent after the first burst but what the quiet server lost.
    const lostIds = (await went.lost()) ?? new Set(results.filter((r) => r.timings.dispatchedAt > went.at).map((r) => r.id));
    const lost = results.filter((r) => lostIds.has(r.id));
    const elsewhere = lost.filter((r) => r.worker.server !== lostId);
    if (elsewhere.length !== lost.length) log(`${spec.label}: ${lost.length - elsewhere.length} lost jobs still came back from the quiet server`);
    const figures: LossFigures = {
      label: spec.label,
      workers: total,
      jobMs: spec.jobMs,
      heartbeatMs: spec.heartbeatMs,
      heartbeatTimeoutMs: spec.heartbeatTimeoutMs,
      lostJobs: lostIds.size,
      requeuedMs: silentMs,
      eventMs: downAt - went.at,
      dispatchedMs: Math.max(...elsewhere.map((r) => r.timings.dispatchedAt)) - went.at,
      runningMs: Math.max(...elsewhere.map((r) => r.timings.startedAt)) - went.at,
    };
    log(
      `${spec.label}: ${figures.lostJobs} jobs lost; all requeued after ${figures.requeuedMs} ms of silence (the caller heard after ${figures.eventMs} ms), sent elsewhere after ${figures.dispatchedMs} ms, running there after ${figures.runningMs} ms (timeout ${spec.heartbeatTimeoutMs} ms)`,
    );
    return figures;
  } finally {
    await controller.sg.close();
    await stop();
  }
}
