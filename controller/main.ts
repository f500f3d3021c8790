/**
 * The controller child process. The caller forks it and talks to it over a ZeroMQ PAIR: the
 * in-queue (jobs, definitions, commands) and the out-queue (results, output, events). With no
 * server URLs it also forks an embedded compute server on loopback that dials back in.
 */
import * as zmq from 'zeromq';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import {
  describeError,
  frames,
  ipcEndpoint,
  linkOptions,
  Outbox,
  readHead,
  readJson,
  receiveLoop,
  type CallerToController,
  type Frames,
} from '../protocol/index.js';
import { createLogger, logLevel } from '../protocol/logger.js';
import { Controller, type CallerJobRow } from './controller.js';
import type { LinkSecurity } from './link-security.js';
import { generateKeyPair, KEY_PAIR_ENV } from '../protocol/index.js';

export interface ControllerLaunch {
  callerEndpoint: string;
  controllerId: string;
  urls: string[];
  listen: string[];
  /** Workers of the embedded local server; none is started when undefined. */
  embeddedWorkers?: number;
  workerHeapMb?: number;
  workerMaxRssMb?: number;
  retries: number;
  timeoutRetries?: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** Key pair, server keys, authorized keys: resolved by the caller, passed in the environment (never argv). */
  security: LinkSecurity;
  /** pino level for the controller and the embedded server (default: $TSGATHER_LOG_LEVEL or warn). */
  logLevel?: string;
}

const cliScript = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const launch = JSON.parse(process.env.TSGATHER_CONTROLLER ?? '{}') as ControllerLaunch;
// It may hold our secret key: the embedded server and its workers (user code) must not inherit it.
delete process.env.TSGATHER_CONTROLLER;
const level = logLevel(launch.logLevel, 'warn');
const logger = createLogger('controller', level);

const pair = new zmq.Pair(linkOptions({}));
const toCaller = new Outbox(pair, (error) => logger.error({ err: error.message }, 'message to caller lost'));
const send = (message: Frames) => toCaller.post(message);
const embeddedEndpoint = launch.embeddedWorkers ? ipcEndpoint('ctl') : undefined;
// The embedded link is CURVE too (an ipc socket file is only as private as the umask made it): keys made on the fly.
const embeddedKeys = embeddedEndpoint ? { controller: launch.security?.keyPair ?? generateKeyPair(), server: generateKeyPair() } : undefined;

const controller = new Controller({
  controllerId: launch.controllerId,
  listen: launch.listen,
  urls: launch.urls,
  security: launch.security,
  embedded: embeddedEndpoint && embeddedKeys ? { endpoint: embeddedEndpoint, keyPair: embeddedKeys.controller, serverKey: embeddedKeys.server.publicKey } : undefined,
  retries: launch.retries,
  timeoutRetries: launch.timeoutRetries,
  heartbeatMs: launch.heartbeatMs,
  heartbeatTimeoutMs: launch.heartbeatTimeoutMs,
  toCaller: send,
  log: (severity, message, detail) => logger[severity](detail ?? {}, message),
});

let embedded: ChildProcess | undefined;
let stopping = false;

function startEmbeddedServer(): void {
  embedded = fork(cliScript, ['server', '--connect', embeddedEndpoint!, '--controller-key', embeddedKeys!.controller.publicKey, '--workers', String(launch.embeddedWorkers), '--name', `local-${os.hostname()}`, '--log-level', level, ...(launch.workerHeapMb ? ['--worker-heap-mb', String(launch.workerHeapMb)] : []), ...(launch.workerMaxRssMb ? ['--worker-max-rss-mb', String(launch.workerMaxRssMb)] : [])], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [KEY_PAIR_ENV]: JSON.stringify(embeddedKeys!.server) },
  });
  embedded.on('exit', (code, signal) => {
    if (!stopping) send(frames({ t: 'event', kind: 'embedded-server-exit', detail: { code, signal } }));
  });
}

async function stop(): Promise<never> {
  if (!stopping) {
    stopping = true;
    await controller.close();
    if (embedded && embedded.exitCode === null) {
      const gone = new Promise((resolve) => embedded!.once('exit', resolve));
      embedded.kill('SIGTERM');
      await gone;
    }
    await toCaller.flushed();
    pair.linger = 500;
    pair.close();
  }
  process.exit(0);
}

async function fromCaller(message: Buffer[]): Promise<void> {
  const head = readHead<CallerToController>(message[0]);
  switch (head.t) {
    case 'jobs': {
      const meta = readJson<{ jobs: CallerJobRow[] }>(message[1], 'jobs metadata');
      return controller.addJobs(meta.jobs, message[2]!.toString('utf8'), message.slice(3));
    }
    case 'define':
      controller.define(head.spec);
      return reply(head.id, true, head.spec.version);
    case 'connect':
      try {
        controller.connect(head.url);
        return reply(head.id, true);
      } catch (error) {
        return reply(head.id, false, undefined, describeError(error).message);
      }
    case 'command':
      switch (head.cmd) {
        case 'status':
          return reply(head.id, true, controller.status());
        case 'refresh':
          await controller.command('refresh');
          return reply(head.id, true, controller.status());
        case 'die':
          await controller.command('die');
          reply(head.id, true);
          return void stop();
        default:
          return reply(head.id, false, undefined, `unknown command '${String(head.cmd)}'; use 'refresh', 'die' or 'status'`);
      }
  }
}

function reply(id: number, ok: boolean, value?: unknown, error?: string): void {
  send(frames({ t: 'reply', id, ok, value, error }));
}

// The caller holds our IPC channel; when it goes, so do we (and the embedded server with us).
process.on('disconnect', () => void stop());
process.on('SIGTERM', () => void stop());

pair.connect(launch.callerEndpoint);
await controller.start();
if (embeddedEndpoint) startEmbeddedServer();
send(frames({ t: 'ready', controller: launch.controllerId, listen: controller.listening.filter((e) => e !== embeddedEndpoint)[0] }));
await receiveLoop(
  pair,
  (message) => {
    fromCaller(message).catch((error) => send(frames({ t: 'event', kind: 'caller-message-error', detail: { reason: describeError(error).message } })));
  },
  (error) => send(frames({ t: 'event', kind: 'caller-message-error', detail: { reason: describeError(error).message } })),
);
