/**
 * The controller process proper, loaded by main.ts once the embedded server (if any) is forking:
 * the PAIR to the caller (in-queue: jobs, definitions, commands; out-queue: results, output,
 * events) and the Controller that owns the links to the servers.
 */
import * as zmq from 'zeromq';
import type { ChildProcess } from 'node:child_process';
import {
  describeError,
  frames,
  linkOptions,
  Outbox,
  readHead,
  readJson,
  receiveLoop,
  type CallerToController,
  type Frames,
} from '../protocol/index.js';
import { createLogger } from '../protocol/logger.js';
import type { LogLevel } from '../protocol/log-level.js';
import { Controller, type CallerJobRow } from './controller.js';
import type { EmbeddedServer } from './embedded-server.js';
import type { ControllerLaunch } from './launch.js';

export async function runController(launch: ControllerLaunch, level: LogLevel, embeddedServer: EmbeddedServer | undefined): Promise<void> {
  const logger = createLogger('controller', level);
  const pair = new zmq.Pair(linkOptions({}));
  const toCaller = new Outbox(pair, (error) => logger.error({ err: error.message }, 'message to caller lost'));
  const send = (message: Frames) => toCaller.post(message);
  const embeddedEndpoint = embeddedServer?.endpoint;

  const controller = new Controller({
    controllerId: launch.controllerId,
    listen: launch.listen,
    urls: launch.urls,
    security: launch.security,
    embedded: embeddedServer ? { endpoint: embeddedServer.endpoint, keyPair: embeddedServer.controllerKeys, serverKey: embeddedServer.serverKey } : undefined,
    retries: launch.retries,
    timeoutRetries: launch.timeoutRetries,
    heartbeatMs: launch.heartbeatMs,
    heartbeatTimeoutMs: launch.heartbeatTimeoutMs,
    toCaller: send,
    log: (severity, message, detail) => logger[severity](detail ?? {}, message),
  });

  const embedded: ChildProcess | undefined = embeddedServer?.process;
  let stopping = false;

  function watchEmbeddedServer(child: ChildProcess): void {
    const exited = (code: number | null, signal: NodeJS.Signals | null) => {
      if (!stopping) send(frames({ t: 'event', kind: 'embedded-server-exit', detail: { code, signal } }));
    };
    // It was forked before this module loaded, and may already be gone.
    if (child.exitCode !== null || child.signalCode !== null) exited(child.exitCode, child.signalCode);
    else child.on('exit', exited);
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
  // The caller may have gone while this module was loading.
  if (!process.connected) void stop();

  pair.connect(launch.callerEndpoint);
  await controller.start();
  if (embedded) watchEmbeddedServer(embedded);
  send(frames({ t: 'ready', controller: launch.controllerId, listen: controller.listening.filter((e) => e !== embeddedEndpoint)[0] }));
  await receiveLoop(
    pair,
    (message) => {
      fromCaller(message).catch((error) => send(frames({ t: 'event', kind: 'caller-message-error', detail: { reason: describeError(error).message } })));
    },
    (error) => send(frames({ t: 'event', kind: 'caller-message-error', detail: { reason: describeError(error).message } })),
  );
}
