/**
 * The controller's memory per connected server and per worker slot. A controller is first warmed
 * with a few servers (its young generation, compiled code and socket buffers in use, as in any
 * controller that has run jobs), then many more servers join and run a round of jobs; what its
 * resident memory gained, divided by the servers that joined, is the figure. Servers of one worker
 * and of eight, side by side, split it between the server and its slots.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { residentBytes } from '../proc.js';
import { sleep } from '../stats.js';
import { noArgItems } from '../engine/session.js';
import { openController, realServers, simServers, freePort, type Controller, type Servers } from './cluster.js';
import { serversOf } from './sim/fleet.js';

export interface MemorySpec {
  kind: 'sim' | 'real';
  servers: number;
  workersEach: number;
  processes: number;
}

export interface MemoryFigures {
  servers: number;
  workersEach: number;
  /** What the controller's resident memory gained per server that joined, with its slots: as it stood, and after a full garbage collection. */
  bytesPerServer: number;
  liveBytesPerServer: number;
  /** Of the live figure: V8's heap (used after the collection), and the rest (ZeroMQ's buffers and everything else outside V8). */
  heapBytesPerServer: number;
}

interface Usage {
  round: number;
  heapUsed: number;
}

const gcHook = fileURLToPath(new URL('./gc-hook.js', import.meta.url));

/** Resident memory of the controller as it stands, and after a full garbage collection (see gc-hook.ts). */
async function resident(controller: Controller, directory: string): Promise<{ rss: number; live: number; heap: number }> {
  const rss = residentBytes(controller.pid);
  const done = join(directory, String(controller.pid));
  const usage = (): Usage => {
    try {
      return JSON.parse(readFileSync(done, 'utf8')) as Usage;
    } catch {
      return { round: 0, heapUsed: 0 };
    }
  };
  const before = usage().round;
  process.kill(controller.pid, 'SIGUSR2');
  const deadline = Date.now() + 10_000;
  while (usage().round === before) {
    if (Date.now() > deadline) throw new Error('the controller did not collect its garbage when asked (gc-hook.js not loaded?)');
    await sleep(20);
  }
  return { rss, live: residentBytes(controller.pid), heap: usage().heapUsed };
}

const WARM_SERVERS = 4;

/** Opens a controller that loads gc-hook.js. */
function openMeasuredController(directory: string, port?: number): Promise<Controller> {
  return openController({ port, env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --expose-gc --import ${gcHook}`.trim(), TSG_GC_DONE_DIR: directory } });
}

export async function measureMemory(spec: MemorySpec, log: (line: string) => void): Promise<MemoryFigures> {
  const directory = mkdtempSync(join(os.tmpdir(), 'tsg-scale-gc-'));
  let controller: Controller;
  let warm: Servers;
  let joinMore: () => Promise<Servers>;
  if (spec.kind === 'sim') {
    controller = await openMeasuredController(directory);
    warm = await simServers({ servers: serversOf(WARM_SERVERS, spec.workersEach, 100_000), controllers: [controller.address], processes: 1 });
    joinMore = () => simServers({ servers: serversOf(spec.servers, spec.workersEach), controllers: [controller.address], processes: spec.processes });
  } else {
    const port = await freePort();
    const address = `tcp://127.0.0.1:${port}`;
    warm = await realServers(WARM_SERVERS, spec.workersEach, address, 0, 'warm');
    controller = await openMeasuredController(directory, port);
    joinMore = () => realServers(spec.servers, spec.workersEach, address, 0);
  }
  let joined: Servers | undefined;
  try {
    const warmWorkers = WARM_SERVERS * spec.workersEach;
    await controller.watch.until(warmWorkers, 60_000);
    await controller.sg.map('noop', noArgItems(100_000));
    await round(controller, warmWorkers);
    await sleep(1500);
    const before = await resident(controller, directory);
    joined = await joinMore();
    const total = warmWorkers + spec.servers * spec.workersEach;
    await controller.watch.until(total, 60_000);
    await round(controller, total);
    await sleep(1500);
    const after = await resident(controller, directory);
    const bytesPerServer = (after.rss - before.rss) / spec.servers;
    const liveBytesPerServer = (after.live - before.live) / spec.servers;
    const heapBytesPerServer = (after.heap - before.heap) / spec.servers;
    log(
      `memory: ${spec.servers} × ${spec.workersEach} ${spec.kind}: ${(bytesPerServer / 1024).toFixed(1)} KB per server; after a full GC ${(liveBytesPerServer / 1024).toFixed(1)} KB, of it ${(heapBytesPerServer / 1024).toFixed(1)} KB in V8's heap`,
    );
    return { servers: spec.servers, workersEach: spec.workersEach, bytesPerServer, liveBytesPerServer, heapBytesPerServer };
  } finally {
    rmSync(directory, { recursive: true, force: true });
    await controller.sg.close();
    await joined?.stop();
    await warm.stop();
  }
}

/** A job through every worker (1 ms each, so each worker gets one), as a server's first minutes would bring. */
async function round(controller: Controller, workers: number): Promise<void> {
  await controller.sg.mapResults(
    'sleep',
    Array.from({ length: 2 * workers }, () => [[1]] as [number[]]),
  );
}
