/**
 * spawnScatterGather({ session: name }): attaches to this user's live session of that name, or
 * starts it. One caller is attached at a time; a process already attached gets its ScatterGather
 * back. A session's directory is claimed by making it (mkdir is atomic), so two callers starting
 * one name at once start one controller: the other waits for it, then finds it in use.
 */
import * as zmq from 'zeromq';
import { mkdirSync, statSync } from 'node:fs';
import { isRunning, pidNamespace } from '../protocol/ipc-endpoint.js';
import type { ControllerLaunch } from '../protocol/launch.js';
import { linkOptions } from '../protocol/transport.js';
import { parseServerUrl } from '../protocol/server-url.js';
import {
  checkSessionName,
  processStartTicks,
  readSessionState,
  removeSessionDir,
  selfIdentity,
  sessionPaths,
  SESSION_FORMAT,
  stateProcessAlive,
  writeSessionState,
  type SessionPaths,
  type SessionSettings,
  type SessionState,
} from '../protocol/session-dir.js';
import { ScatterGather } from './scatter-gather.js';
import { ControllerGoneError, requestAttach } from './session-attach.js';
import { SessionLink } from './session-link.js';
import { SessionProcess } from './session-process.js';
import { logTail, startDetachedController } from './session-start.js';
import { SessionInUseError, SessionNotFoundError, type SessionInfo } from './session-types.js';
import type { SpawnOptions } from './types.js';
import { untilReady, type Readiness } from './until-ready.js';

const DEFAULT_IDLE_MS = 3_600_000;
const DEFAULT_HOLD_MB = 1024;
/** How often a caller looks again while another starts the session. */
const RETRY_MS = 50;
/** A session directory with no state file this old was left by a caller that died starting it. */
const ABANDONED_MS = 5000;

/** Options fixed when a session starts (the controller's): a later caller's differing ones are ignored, with a warning. */
const SESSION_OPTIONS = [
  'workers',
  'embedded',
  'listen',
  'retries',
  'timeoutRetries',
  'heartbeatMs',
  'heartbeatTimeoutMs',
  'workerHeapMb',
  'workerMaxRssMb',
  'spareWorkers',
  'weight',
  'logLevel',
  'sessionIdleMs',
  'sessionHoldMb',
  'keyFile',
  'keyPair',
  'serverKey',
  'serverKeys',
  'authorizedKeys',
  'insecure',
] as const;

/** This process's attached sessions, by name. */
const attachedHere = new Map<string, ScatterGather>();

export async function openSession(launch: Omit<ControllerLaunch, 'callerEndpoint'>, options: SpawnOptions, readiness: Readiness, defaultFunction: string | undefined): Promise<ScatterGather> {
  const name = checkSessionName(options.session);
  const here = attachedHere.get(name);
  if (here) return here;
  const paths = sessionPaths(name);
  const settings = settingsOf(launch.urls, options);
  const deadline = Date.now() + readiness.timeoutMs;
  for (;;) {
    const state = readSessionState(paths.dir);
    const alive = state !== undefined && stateProcessAlive(state);
    if (alive && !state.starting) {
      const sg = await attach(name, paths, state, options, settings, readiness.timeoutMs);
      if (sg) return sg;
    } else if (!alive) {
      if (options.attachOnly) throw new SessionNotFoundError(name);
      if (claim(paths, state, settings, options)) return start(name, paths, launch, options, settings, readiness, defaultFunction);
    }
    // Another caller is starting it (or it ended as we attached): look again.
    if (Date.now() > deadline) throw new Error(`session '${name}' did not come up within ${readiness.timeoutMs} ms (another process was starting it)`);
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

/** Makes the session's directory, ours alone to start, after clearing one its process left behind; false when another caller got there first. */
function claim(paths: SessionPaths, state: SessionState | undefined, settings: SessionSettings, options: SpawnOptions): boolean {
  if (state) removeSessionDir(paths.dir, state.pid);
  else {
    const made = madeAt(paths.dir);
    if (made !== undefined && Date.now() - made < ABANDONED_MS) return false; // its state file is on its way
    if (made !== undefined) removeSessionDir(paths.dir);
  }
  try {
    mkdirSync(paths.dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  const idleMs = options.sessionIdleMs ?? DEFAULT_IDLE_MS;
  const starting: SessionState = {
    format: SESSION_FORMAT,
    name: options.session!,
    ...selfIdentity(),
    starting: true,
    started: new Date().toISOString(),
    idleMs,
    endpoint: paths.endpoint,
    log: paths.log,
    settings,
  };
  writeSessionState(paths.dir, starting);
  return true;
}

async function start(
  name: string,
  paths: SessionPaths,
  launch: Omit<ControllerLaunch, 'callerEndpoint'>,
  options: SpawnOptions,
  settings: SessionSettings,
  readiness: Readiness,
  defaultFunction: string | undefined,
): Promise<ScatterGather> {
  const idleMs = options.sessionIdleMs ?? DEFAULT_IDLE_MS;
  const session = { name, dir: paths.dir, idleMs, holdBytes: (options.sessionHoldMb ?? DEFAULT_HOLD_MB) * 1048576, callerPid: process.pid, settings };
  let pid: number;
  try {
    pid = await startDetachedController({ ...launch, callerEndpoint: paths.endpoint, session }, paths.log);
  } catch (error) {
    removeSessionDir(paths.dir, process.pid);
    throw error;
  }
  const controller = new SessionProcess({ pid, startTicks: processStartTicks(pid), pidNamespace: pidNamespace() });
  const info: SessionInfo = { name, attached: false, pid, started: new Date().toISOString(), idleMs, dir: paths.dir, log: paths.log, owed: 0, held: 0, ignoredOptions: [] };
  const sg = registered(name, (onEnd) => new ScatterGather(controller, connect(paths), options, defaultFunction, new SessionLink(info, controller, undefined, onEnd)));
  try {
    await untilReady(sg, readiness);
  } catch (error) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
    const tail = logTail(paths.log);
    removeSessionDir(paths.dir);
    throw new Error(`${(error as Error).message.replace(/; see its output above$/, '')}${tail ? `; its log ended:\n${tail}` : ''}`);
  }
  info.started = readSessionState(paths.dir)?.started ?? info.started; // as the controller wrote it
  return sg;
}

/** Attaches to the running session; nothing when its controller ended meanwhile. */
async function attach(name: string, paths: SessionPaths, state: SessionState, options: SpawnOptions, settings: SessionSettings, timeoutMs: number): Promise<ScatterGather | undefined> {
  if (state.format !== SESSION_FORMAT) {
    throw new Error(
      `session '${name}' was started by another version of tsgather (session format ${state.format}; this one's is ${SESSION_FORMAT}); end it with \`tsgather sessions end ${name}\`, or use another name`,
    );
  }
  if (state.pidNamespace !== pidNamespace()) throw new Error(`session '${name}' runs in another pid namespace (a container?): it cannot be attached from here`);
  if (state.attachedPid !== undefined && state.attachedPid !== process.pid && isRunning(state.attachedPid)) throw new SessionInUseError(name, state.attachedPid);
  const controller = new SessionProcess(state);
  const socket = connect(paths);
  let seed: Awaited<ReturnType<typeof requestAttach>>;
  try {
    seed = await requestAttach(socket, controller, name, timeoutMs);
  } catch (error) {
    socket.close();
    controller.stop();
    if (error instanceof ControllerGoneError) return undefined;
    throw error;
  }
  const ignoredOptions = Object.keys(settings).filter((key) => JSON.stringify(settings[key]) !== JSON.stringify(state.settings[key]));
  if (ignoredOptions.length > 0) {
    process.emitWarning(`session '${name}' is running: ${ignoredOptions.join(', ')} ${ignoredOptions.length > 1 ? 'are' : 'is'} fixed when a session starts, and ignored here`, {
      code: 'TSGATHER_SESSION_OPTIONS',
    });
  }
  const owed = seed.owed.reduce((sum, run) => sum + run[1], 0);
  const info: SessionInfo = { name, attached: true, pid: state.pid, started: state.started, idleMs: state.idleMs, dir: paths.dir, log: paths.log, owed, held: seed.held, ignoredOptions };
  const urls = (state.settings.urls as string[] | undefined) ?? [];
  const sg = registered(name, (onEnd) => new ScatterGather(controller, socket, options, urls.map(parseServerUrl).find((a) => a.fn)?.fn, new SessionLink(info, controller, seed, onEnd)));
  sg.listenAddress = seed.listen;
  return sg;
}

function connect(paths: SessionPaths): zmq.Pair {
  // The controller may not have bound yet: dial again soon rather than after ZeroMQ's default 100 ms.
  const socket = new zmq.Pair(linkOptions({ reconnectInterval: 20 }));
  socket.connect(paths.endpoint);
  return socket;
}

/** When `dir` was last changed; nothing when it does not exist. */
function madeAt(dir: string): number | undefined {
  try {
    return statSync(dir).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Made and entered as this process's ScatterGather of session `name`, until it ends (detached, closed, or the controller gone). */
function registered(name: string, make: (onEnd: () => void) => ScatterGather): ScatterGather {
  const sg: ScatterGather = make(() => {
    if (attachedHere.get(name) === sg) attachedHere.delete(name);
  });
  attachedHere.set(name, sg);
  return sg;
}

/** The session-fixed options this call gives (URLs only when it gives some), keys left out. */
function settingsOf(urls: string[], options: SpawnOptions): SessionSettings {
  const settings: SessionSettings = urls.length > 0 ? { urls } : {};
  for (const key of SESSION_OPTIONS) {
    if (options[key] !== undefined) settings[key] = key === 'keyPair' ? { publicKey: String(options.keyPair!.publicKey) } : options[key];
  }
  return settings;
}
