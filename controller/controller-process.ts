/**
 * The controller process: the PAIR to the caller (in-queue: jobs, definitions, commands; out-queue: results, output,
 * events), the Controller that owns the links to the servers and, for the embedded cluster, a compute server run in
 * this process (made by embedded/controller-main.ts), linked in-process so that jobs go caller → controller → worker
 * with no hop in between.
 */
import * as zmq from 'zeromq';
import {
  describeError,
  checkCredit,
  linkOptions,
  toCaller,
  Outbox,
  readHead,
  readJson,
  receiveLoop,
  type CallerToController,
  type DefinitionSpec,
  type ControllerToCaller,
  type SessionAttached,
  type TakenAck,
  type Deliver,
  type Frames,
  type LinkMessage,
} from '../protocol/index.js';
import { createLogger } from '../runtime/logger.js';
import type { LogLevel } from '../runtime/log-level.js';
import { Controller } from './controller.js';
import type { ControllerLaunch } from '../protocol/launch.js';
import { selfIdentity, SESSION_FORMAT } from '../protocol/session-dir.js';
import { CallerSession, type CallerSessionHooks } from './caller-session.js';

/** A compute server run in the controller process (the embedded cluster), linked to the controller in-process. */
export interface InProcessServer {
  start(): Promise<void>;
  linkInProcess(deliver: Deliver, onDeliverError: (error: unknown) => void): (message: Frames) => void;
  close(): Promise<void>;
}

export async function runController(launch: ControllerLaunch, level: LogLevel, embedded?: InProcessServer): Promise<void> {
  const logger = createLogger('controller', level);
  const pair = new zmq.Pair(linkOptions({}));
  const callerOutbox = new Outbox(pair, (error) => logger.error({ err: error.message }, 'message to caller lost'));
  // In a session, what goes to the caller passes the session, which numbers and holds results.
  const session = launch.session
    ? openSession(launch, {
        post: (message) => callerOutbox.post(message),
        resume: () => controller.pumpAll(),
        idle: () => {
          logger.info({ session: launch.session?.name }, 'session idle for sessionIdleMs: ending it');
          void stop();
        },
        log: (severity, message, detail) => logger[severity](detail ?? {}, message),
      })
    : undefined;
  const send = (message: LinkMessage<ControllerToCaller>) => (session ? session.send(message) : callerOutbox.post(message));
  // Its socket is bound first: workers started early are already trying to connect.
  embedded?.start().catch((error: unknown) => send(toCaller({ t: 'event', kind: 'embedded-server-failed', detail: { reason: describeError(error).message } })));

  const controller = new Controller({
    controllerId: launch.controllerId,
    listen: launch.listen,
    urls: launch.urls,
    security: launch.security,
    retries: launch.retries,
    timeoutRetries: launch.timeoutRetries,
    heartbeatMs: launch.heartbeatMs,
    heartbeatTimeoutMs: launch.heartbeatTimeoutMs,
    weight: launch.weight,
    toCaller: send,
    mayDispatch: session && (() => session.mayDispatch()),
    log: (severity, message, detail) => logger[severity](detail ?? {}, message),
  });

  let stopping = false;

  async function stop(code = 0): Promise<never> {
    if (!stopping) {
      stopping = true;
      session?.close();
      await controller.close();
      await embedded?.close();
      // A session may have no caller to take what is left (idle, or ended from the command line).
      await (session ? Promise.race([callerOutbox.flushed(), new Promise((resolve) => setTimeout(resolve, 500))]) : callerOutbox.flushed());
      pair.linger = 500;
      pair.close();
    }
    process.exit(code);
  }

  async function fromCaller(message: Buffer[]): Promise<void> {
    const head = readHead<CallerToController>(message[0]);
    switch (head.t) {
      case 'jobs':
        controller.addJobs(head, message);
        return session?.jobsAdded(head.first, head.count, head.fn);
      case 'define': {
        let spec: DefinitionSpec | undefined;
        try {
          spec = readJson<DefinitionSpec>(message[1], 'definition');
        } catch (error) {
          return reply(head.id, false, undefined, describeError(error).message);
        }
        if (typeof spec?.name !== 'string' || !Number.isInteger(spec.version) || typeof spec.source !== 'string') {
          return reply(head.id, false, undefined, 'a definition needs a name, a whole version and a source');
        }
        controller.define(spec);
        session?.defined(spec.name, spec.version);
        return reply(head.id, true, spec.version);
      }
      case 'credit': {
        const { job, n } = checkCredit(head.job, head.n);
        return controller.credit(job, n);
      }
      case 'put':
        if (controller.scattered.has(head.name)) return reply(head.id, false, undefined, `'${head.name}' is scattered (sg.scatter): drop it before pushing under that name`);
        try {
          return reply(head.id, true, controller.shared.put(head.name, head.plain === true, message.slice(1)));
        } catch (error) {
          return reply(head.id, false, undefined, describeError(error).message);
        }
      case 'drop': {
        const scattered = controller.scattered.drop(head.name);
        if (scattered) controller.shared.dropEverywhere(head.name);
        return reply(head.id, true, controller.shared.drop(head.name) || scattered);
      }
      case 'scatter':
        if (controller.shared.has(head.name)) return reply(head.id, false, undefined, `'${head.name}' is pushed (sg.push): drop it before scattering under that name`);
        try {
          return reply(head.id, true, controller.scattered.scatter(head.name, head.parts, message.slice(1)));
        } catch (error) {
          return reply(head.id, false, undefined, describeError(error).message);
        }
      case 'gather':
        return controller.scattered.gather(head.name, (error, parts, frames = []) =>
          error === undefined ? send(toCaller({ t: 'reply', id: head.id, ok: true }, JSON.stringify(parts), ...frames)) : reply(head.id, false, undefined, error),
        );
      case 'attach':
        if (!session) return reply(head.id, false, undefined, 'this controller is not a named session');
        if (!Number.isInteger(head.pid)) return reply(head.id, false, undefined, 'attach needs the caller pid');
        reply(head.id, true, { ...session.attach(head.pid), controller: launch.controllerId, listen: controller.listening[0] } satisfies SessionAttached);
        return session.replay();
      case 'detach':
        if (!session) return reply(head.id, false, undefined, 'this controller is not a named session');
        reply(head.id, true, session.summary()); // before detaching: a detached session drops replies
        return session.detach();
      case 'taken':
        return session?.taken(readJson<TakenAck>(message[1], 'taken'));
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
            // The caller closes our IPC channel once it has read this reply, and we stop then. Exiting
            // at once raced the reply: a caller could see the exit first and take die for a crash.
            // A session has no IPC channel: it stops once the reply is on its way.
            await controller.command('die');
            reply(head.id, true);
            if (session) void stop();
            return;
          default:
            return reply(head.id, false, undefined, `unknown command '${String(head.cmd)}'; use 'refresh', 'die' or 'status'`);
        }
    }
  }

  function reply(id: number, ok: boolean, value?: unknown, error?: string): void {
    send(toCaller({ t: 'reply', id, ok, error }, value === undefined ? '' : JSON.stringify(value)));
  }

  // The caller holds our IPC channel; when it goes, so do we. A session's controller has none: it
  // ends on close(), on SIGTERM (`tsgather sessions end`) or when idle.
  process.on('disconnect', () => void stop());
  process.on('SIGTERM', () => void stop());

  if (session) await pair.bind(launch.callerEndpoint);
  else pair.connect(launch.callerEndpoint);
  try {
    await controller.start();
  } catch (error) {
    // A listen address in use, say: said on the stderr we share with the caller (whose spawnScatterGather
    // rejects when we exit) and sent to it as an event, rather than left to an uncaught error's stack trace.
    const reason = describeError(error).message;
    logger.fatal({ reason }, 'controller could not start');
    send(toCaller({ t: 'event', kind: 'controller-failed', detail: { reason } }));
    return stop(1);
  }
  if (embedded) controller.linkInProcess((deliver, onDeliverError) => embedded.linkInProcess(deliver, onDeliverError));
  send(toCaller({ t: 'ready', controller: launch.controllerId, listen: controller.listening[0] }));
  await receiveLoop(
    pair,
    (message) => {
      fromCaller(message).catch((error) => send(toCaller({ t: 'event', kind: 'caller-message-error', detail: { reason: describeError(error).message } })));
    },
    (error) => send(toCaller({ t: 'event', kind: 'caller-message-error', detail: { reason: describeError(error).message } })),
  );
}

/** The session's side of the caller link; its state file says, from now on, that this process is the session's controller. */
function openSession(launch: ControllerLaunch, hooks: CallerSessionHooks): CallerSession {
  const session = launch.session!;
  const state = {
    format: SESSION_FORMAT,
    name: session.name,
    ...selfIdentity(),
    started: new Date().toISOString(),
    idleMs: session.idleMs,
    endpoint: launch.callerEndpoint,
    log: `${session.dir}/controller.log`,
    settings: session.settings,
  };
  return new CallerSession(session, state, hooks);
}
