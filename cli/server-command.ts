/** `tsgather server`: runs a compute server in the foreground until SIGTERM/SIGINT, or as a daemon; `server stop|status`. */
import { Command, InvalidArgumentError } from 'commander';
import os from 'node:os';
import { createLogger, logLevel } from '../runtime/logger.js';
import { ComputeServer } from '../server/server.js';
import { daemonize, isDaemonChild, reportToLauncher } from './daemon.js';
import { expandServerName } from './server-name.js';
import { IdleWatch } from '../server/idle-watch.js';
import { collect, logLevelOption, positiveInt, wholeNumber } from './arguments.js';
import { EXIT, fail } from './exit-codes.js';
import { claimPidfile, DEFAULT_PIDFILE, PidfileError, releasePidfile, runningPid, statusFileOf } from './pidfile.js';
import { serverStatusCommand, serverStopCommand } from './server-control.js';
import { addServerSecurityOptions, resolveServerSecurity, type ServerSecurityFlags } from './server-security.js';
import { InsecureConfigurationError } from '../server/server.js';
import { KeyError, keyToHex } from '../protocol/index.js';

export function serverCommand(): Command {
  const command = addServerSecurityOptions(new Command('server'))
    .description('start a compute server: one worker process per core, serving controllers')
    .enablePositionalOptions()
    .option('--bind <url>', 'listen for controllers here, e.g. tcp://0.0.0.0:5555 (repeatable)', collect, [])
    .option('--connect <url>', "dial out to a controller's listen address (repeatable)", collect, [])
    .option('--workers <n>', 'worker processes', positiveInt, os.availableParallelism())
    .option('--module <file>', 'preload this module: its exported functions can be called by name')
    .option('--max-workers <n>', 'most workers a controller may ask for with ?workers=N (default: 4 per core)', positiveInt)
    .option('--worker-heap-mb <mb>', 'V8 heap limit of each worker (a job that exceeds it kills only its worker)', positiveInt)
    .option('--worker-max-rss-mb <mb>', 'memory ceiling of each worker: one whose resident memory grows past it is recycled between jobs', positiveInt)
    .option('--spare-workers <n>', 'worker processes kept started and waiting, so a refresh or a crash gets a fresh worker in milliseconds (default: one per worker; 0 for none)', wholeNumber)
    .option('--name <name>', 'server name shown to controllers (default: host-pid); $VAR, ${VAR}, {host} and {pid} are expanded by the server, e.g. --name node-$SLURM_JOB_ID-$SLURM_PROCID')
    .option('--label <label>', 'a label jobs may ask for, e.g. gpu or site=lab2 (repeatable): jobs with { labels } run only on servers carrying every one', collectLabel, [])
    .option('--drain-seconds <seconds>', 'on SIGTERM or SIGUSR1: how long running jobs may finish before the server stops; queued jobs go back to their controllers', wholeNumber, 10)
    .option(
      '--lifetime <seconds>',
      'drain and exit after this long, as before a wall-time (with --lifetime-stagger, up to that much later, at random, so that servers started together do not all go at once)',
      positiveInt,
    )
    .option('--lifetime-stagger <seconds>', 'with --lifetime: add up to this many seconds, drawn at random', wholeNumber, 0)
    .option('--idle-exit <seconds>', 'exit once no controller has been in session for this long (for servers a batch system or container starts)', positiveInt)
    .option('--exclusive', "serve one controller alone: its close() or die stops this server's workers (default: shared; a die ends only that controller's session)")
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace, silent (default: $TSGATHER_LOG_LEVEL or info)', logLevelOption)
    .option('--daemon', 'detach and run in the background; returns once the server is ready')
    .option('--pidfile <file>', `record the pid here; refuse to start if a live server holds it (default with --daemon: ${DEFAULT_PIDFILE})`)
    .option('--log-file <file>', 'with --daemon: where its logs go (default: the pid file with .log)')
    .action(
      async (
        opts: {
          bind: string[];
          connect: string[];
          workers: number;
          maxWorkers?: number;
          module?: string;
          name?: string;
          label: string[];
          exclusive?: boolean;
          idleExit?: number;
          drainSeconds: number;
          lifetime?: number;
          lifetimeStagger: number;
          workerHeapMb?: number;
          workerMaxRssMb?: number;
          spareWorkers?: number;
          logLevel?: string;
          daemon?: boolean;
          pidfile?: string;
          logFile?: string;
        } & ServerSecurityFlags,
        cmd: Command,
      ) => {
        if (opts.bind.length === 0 && opts.connect.length === 0) cmd.error('error: give --bind and/or --connect', { exitCode: EXIT.usage });
        if (opts.name !== undefined) {
          try {
            opts.name = expandServerName(opts.name);
          } catch (error) {
            cmd.error(`error: ${(error as Error).message}`, { exitCode: EXIT.usage });
          }
        }
        if (opts.daemon) return startDaemon(opts.pidfile ?? DEFAULT_PIDFILE, opts.logFile);
        const logger = createLogger('server', logLevel(opts.logLevel, 'info'));
        let security: ReturnType<typeof resolveServerSecurity>;
        try {
          security = resolveServerSecurity(opts);
          // Refused here, before a pid file is claimed or a worker forked.
          ComputeServer.checkSecurity({ ...opts, ...security, logger });
        } catch (error) {
          if (!(error instanceof KeyError || error instanceof InsecureConfigurationError)) throw error;
          if (isDaemonChild()) await reportToLauncher({ t: 'failed', reason: error.message });
          fail(error.message, EXIT.usage);
          return process.exit();
        }
        if (opts.pidfile) {
          try {
            claimPidfile(opts.pidfile);
          } catch (error) {
            if (!(error instanceof PidfileError)) throw error;
            if (isDaemonChild()) await reportToLauncher({ t: 'failed', reason: error.message });
            return fail(error.message);
          }
        }
        const server = new ComputeServer({ ...opts, labels: opts.label, statusFile: opts.pidfile ? statusFileOf(opts.pidfile) : undefined, ...security, logger });
        const stop = async (why: string) => {
          logger.info({ why }, 'stopping');
          await server.drain(opts.drainSeconds * 1000);
          if (opts.pidfile) releasePidfile(opts.pidfile);
          process.exit(0);
        };
        process.once('SIGTERM', () => void stop('SIGTERM'));
        // Slurm's --signal=B:USR1@N says the wall-time is near (and replaces Node's start-the-inspector default).
        process.once('SIGUSR1', () => void stop('SIGUSR1'));
        process.once('SIGINT', () => void stop('SIGINT'));
        // Started by a controller: go when it goes. A daemon's launcher leaves on purpose.
        if (process.send && !isDaemonChild()) process.once('disconnect', () => void stop('parent gone'));
        try {
          await server.start();
        } catch (error) {
          // A server that cannot serve (an address in use, workers that cannot load --module) leaves no pid file behind.
          if (opts.pidfile) releasePidfile(opts.pidfile);
          if (isDaemonChild()) await reportToLauncher({ t: 'failed', reason: (error as Error).message });
          throw error;
        }
        for (const endpoint of server.endpoints) process.stdout.write(`listening on ${endpoint}\n`);
        // Public, and what a controller needs to dial this server: `?key=<hex>` in its URL (said only when it is dialled).
        const publicKey = security.keyPair && server.endpoints.length > 0 ? keyToHex(security.keyPair.publicKey) : undefined;
        if (publicKey) process.stdout.write(`public key ${publicKey}\n`);
        if (isDaemonChild()) await reportToLauncher({ t: 'ready', pid: process.pid, endpoints: server.endpoints, publicKey });
        if (opts.lifetime) {
          const seconds = opts.lifetime + Math.random() * opts.lifetimeStagger;
          setTimeout(() => void stop(`lifetime of ${seconds.toFixed(1)} s is over (--lifetime)`), seconds * 1000).unref();
        }
        if (opts.idleExit)
          new IdleWatch(
            opts.idleExit * 1000,
            () => server.inSession(),
            () => void stop(`no controller for ${opts.idleExit} s (--idle-exit)`),
          );
      },
    );
  command.addCommand(serverStopCommand());
  command.addCommand(serverStatusCommand());
  return command;
}

/** A --label: no spaces or commas (labels are listed with commas in status). */
function collectLabel(label: string, labels: string[]): string[] {
  if (!/^[^\s,]+$/.test(label)) throw new InvalidArgumentError(`'${label}' is not a label: give a word such as gpu or site=lab2, without spaces or commas`);
  return [...labels, label];
}

/** Re-runs this very command line without --daemon, detached, and reports what it serves. */
async function startDaemon(pidfile: string, logFile = pidfile.replace(/(\.pid)?$/, '.log')): Promise<void> {
  const args = process.argv.slice(process.argv.indexOf('server') + 1).filter((arg) => arg !== '--daemon');
  if (!args.some((arg) => arg === '--pidfile' || arg.startsWith('--pidfile='))) args.push('--pidfile', pidfile);
  const holder = runningPid(pidfile);
  if (holder !== undefined) return fail(`a server is already running with pid ${holder} (pid file ${pidfile})`);
  try {
    const { pid, endpoints, publicKey } = await daemonize(args, logFile);
    for (const endpoint of endpoints) process.stdout.write(`listening on ${endpoint}\n`);
    if (publicKey) process.stdout.write(`public key ${publicKey}\n`);
    process.stdout.write(`started server pid ${pid} (pid file ${pidfile}, log ${logFile})\n`);
  } catch (error) {
    fail(`server did not start: ${(error as Error).message}`);
  }
}
