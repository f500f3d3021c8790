/**
 * spawnScatterGather: forks the controller child, links it to this process over a PAIR socket,
 * and waits until it and its servers are up. Options are checked, and key files read, before
 * anything starts, so a mistake fails this call with a clear error.
 */
import * as zmq from 'zeromq';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { ipcEndpoint, linkOptions } from '../protocol/index.js';
import type { ControllerLaunch } from '../protocol/launch.js';
import { checkListen, resolveLinkSecurity, serverKeyFor } from '../protocol/link-security.js';
import { parseServerUrl } from '../protocol/server-url.js';
import { YOUNG_GENERATION_FLAGS } from '../runtime/v8-flags.js';
import { withMallocTunables } from '../runtime/malloc-tunables.js';
import { inheritableExecArgv } from './exec-argv.js';
import { ScatterGather } from './scatter-gather.js';
import { checkSpawnOptions } from './spawn-options.js';
import { closeWithController, startCluster, withClusterPlan } from './cluster-launch.js';
import type { SpawnOptions } from './types.js';

const controllerScript = fileURLToPath(new URL('../embedded/controller-main.js', import.meta.url));

/**
 * Starts a controller child process. With no URLs it also starts an embedded compute server on
 * this machine with one worker per core; with URLs (`tcp://host:port[/fn][?workers=N]`) it dials
 * those servers. `listen` lets further servers dial in (`tsgather server --connect ...`).
 */
export async function spawnScatterGather(urls: string[] = [], options: SpawnOptions = {}): Promise<ScatterGather> {
  checkSpawnOptions(options);
  const launcher = options.cluster;
  if (launcher) options = await withClusterPlan(options, launcher);
  const addresses = urls.map(parseServerUrl);
  const embeddedWorkers = urls.length === 0 && options.embedded !== false ? (options.workers ?? os.availableParallelism()) : undefined;
  // Key files are read and every link checked here, so a mistake fails this call with a clear error.
  const security = resolveLinkSecurity(options);
  for (const address of addresses) serverKeyFor(address, security);
  const listen = options.listen ? [options.listen].flat() : [];
  checkListen(listen, security);
  const callerEndpoint = ipcEndpoint('caller');
  const socket = new zmq.Pair(linkOptions({}));
  await socket.bind(callerEndpoint);
  const launch: ControllerLaunch = {
    callerEndpoint,
    controllerId: `controller-${randomUUID()}`,
    urls,
    listen,
    embedded: embeddedWorkers ? { workers: embeddedWorkers, workerHeapMb: options.workerHeapMb, workerMaxRssMb: options.workerMaxRssMb, spareWorkers: options.spareWorkers } : undefined,
    retries: options.retries ?? 1,
    timeoutRetries: options.timeoutRetries ?? 0,
    heartbeatMs: options.heartbeatMs ?? 1000,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 5000,
    weight: options.weight,
    security,
    logLevel: options.logLevel,
  };
  const child = fork(controllerScript, [], {
    // The caller's own flags come last, so they win; those naming the caller's own program stay behind.
    execArgv: [...YOUNG_GENERATION_FLAGS, ...inheritableExecArgv(process.execArgv)],
    env: { ...withMallocTunables(process.env), TSGATHER_CONTROLLER: JSON.stringify(launch) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
  });
  if (launcher) closeWithController(launcher, child);
  const sg = new ScatterGather(child, socket, options, addresses.find((a) => a.fn)?.fn);
  try {
    await untilReady(
      sg,
      addresses.map((a) => ({ url: a.endpoint, workers: a.workers })),
      embeddedWorkers,
      options.connectTimeoutMs ?? 15_000,
    );
    if (launcher) {
      sg.cluster = launcher;
      await startCluster(launcher, sg, security.keyPair!.publicKey);
    }
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return sg;
}

/** Waits for the controller, then for every server to be up with its workers (all of them for the embedded one). */
function untilReady(sg: ScatterGather, servers: Array<{ url: string; workers?: number }>, embeddedWorkers: number | undefined, timeoutMs: number): Promise<void> {
  // Start-up keeps the process alive and reads each event as it comes; released the moment it is over.
  const release = sg.hold();
  return new Promise((resolve, reject) => {
    const workersByServer = new Map<string, number>();
    const urlServer = new Map<string, string>();
    /** How many workers each server said it has; a server may grant fewer than a URL asked for. */
    const grantedByServer = new Map<string, number>();
    let controllerReady = false;
    let embeddedServer: string | undefined;
    /** Why a server's security handshake keeps failing, by endpoint: said if it never comes up. */
    const handshakeErrors = new Map<string, string>();
    const check = () => {
      if (!controllerReady) return;
      const urlsUp = servers.every(({ url, workers }) => {
        const id = urlServer.get(url);
        return id !== undefined && (workersByServer.get(id) ?? 0) >= Math.min(workers ?? 1, grantedByServer.get(id) ?? Infinity);
      });
      const embeddedUp = embeddedWorkers === undefined || (embeddedServer !== undefined && (workersByServer.get(embeddedServer) ?? 0) >= embeddedWorkers);
      if (urlsUp && embeddedUp) finish();
    };
    const onEvent = ({ kind, detail }: { kind: string; detail: Record<string, unknown> }) => {
      if (kind === 'server-up') {
        const url = detail.url as string | undefined;
        if (typeof detail.workers === 'number') grantedByServer.set(detail.server as string, detail.workers);
        if (url) urlServer.set(parseServerUrl(url).endpoint, detail.server as string);
        else embeddedServer ??= detail.server as string;
      } else if (kind === 'worker-up') {
        workersByServer.set(detail.server as string, (workersByServer.get(detail.server as string) ?? 0) + 1);
      } else if (kind === 'server-handshake-failed' && detail.url) {
        handshakeErrors.set(parseServerUrl(detail.url as string).endpoint, String(detail.reason));
      } else if (kind === 'server-refused') {
        return finish(new Error(`server ${String(detail.url ?? detail.server)} refused the connection: ${String(detail.reason)}`));
      } else if (kind === 'controller-failed') {
        return finish(new Error(`the controller could not start: ${String(detail.reason)}`));
      } else if (kind === 'embedded-server-failed') {
        return finish(new Error(`the embedded compute server could not start: ${String(detail.reason)}`));
      }
      check();
    };
    const onReady = () => {
      controllerReady = true;
      check();
    };
    const onExit = () => finish(new Error('the controller process exited during start-up; see its output above'));
    const timer = setTimeout(() => {
      const missing = servers.filter(({ url }) => !urlServer.has(url)).map(({ url }) => url);
      const why = missing.map((url) => (handshakeErrors.has(url) ? `${url} (${handshakeErrors.get(url)})` : url));
      finish(new Error(`scatter/gather did not come up within ${timeoutMs} ms${why.length ? `: no answer from ${why.join(', ')}` : ''}`));
    }, timeoutMs);
    const finish = (error?: Error) => {
      release();
      clearTimeout(timer);
      sg.off('event', onEvent).off('ready', onReady).off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    sg.on('event', onEvent).on('ready', onReady).on('exit', onExit);
  });
}
