/**
 * spawnScatterGather: forks the controller child, links it to this process over a PAIR socket,
 * and waits until it and its servers are up. Options are checked, and key files read, before
 * anything starts, so a mistake fails this call with a clear error. With `session`, the controller
 * is a named session's instead, which outlives this process (session-open.ts).
 */
import * as zmq from 'zeromq';
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { ipcEndpoint, linkOptions } from '../protocol/index.js';
import type { ControllerLaunch } from '../protocol/launch.js';
import { checkListen, resolveLinkSecurity, serverKeyFor } from '../protocol/link-security.js';
import { parseServerUrl } from '../protocol/server-url.js';
import { controllerEnv, controllerExecArgv, controllerScript } from './controller-command.js';
import { ScatterGather } from './scatter-gather.js';
import { openSession } from './session-open.js';
import { checkSpawnOptions } from './spawn-options.js';
import { closeWithController, startCluster, withClusterPlan } from './cluster-launch.js';
import type { SpawnOptions } from './types.js';
import { untilReady, type Readiness } from './until-ready.js';

/**
 * Starts a controller child process. With no URLs it also starts an embedded compute server on
 * this machine with one worker per core; with URLs (`tcp://host:port[/fn][?workers=N]`) it dials
 * those servers. `listen` lets further servers dial in (`tsgather server --connect ...`). The URLs
 * may be left out: `spawnScatterGather(options)`.
 */
export async function spawnScatterGather(urls?: string[], options?: SpawnOptions): Promise<ScatterGather>;
export async function spawnScatterGather(options: SpawnOptions): Promise<ScatterGather>;
export async function spawnScatterGather(urlsOrOptions: string[] | SpawnOptions = [], maybeOptions: SpawnOptions = {}): Promise<ScatterGather> {
  if (typeof urlsOrOptions !== 'object' || urlsOrOptions === null) throw new TypeError(`spawnScatterGather takes a list of server URLs, then options, or options alone (got ${String(urlsOrOptions)})`);
  // Options alone: those given second (a front end's defaults, say) yield to them.
  let [urls, options] = Array.isArray(urlsOrOptions) ? [urlsOrOptions, maybeOptions] : [[], { ...maybeOptions, ...urlsOrOptions }];
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
  const launch: Omit<ControllerLaunch, 'callerEndpoint'> = {
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
  const readiness: Readiness = {
    servers: addresses.map((a) => ({ url: a.endpoint, workers: a.workers })),
    embeddedWorkers,
    timeoutMs: options.connectTimeoutMs ?? 15_000,
  };
  const defaultFunction = addresses.find((a) => a.fn)?.fn;
  if (options.session !== undefined) return openSession(launch, options, readiness, defaultFunction);

  const callerEndpoint = ipcEndpoint('caller');
  const socket = new zmq.Pair(linkOptions({}));
  await socket.bind(callerEndpoint);
  const child = fork(controllerScript, [], {
    execArgv: controllerExecArgv(),
    env: controllerEnv({ ...launch, callerEndpoint }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
  });
  if (launcher) closeWithController(launcher, child);
  const sg = new ScatterGather(child, socket, options, defaultFunction);
  try {
    await untilReady(sg, readiness);
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
