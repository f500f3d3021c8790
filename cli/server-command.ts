/** `tsgather server`: runs a compute server in the foreground until SIGTERM/SIGINT. */
import { Command, InvalidArgumentError } from 'commander';
import os from 'node:os';
import { pino } from 'pino';
import { ComputeServer } from '../server/server.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function serverCommand(): Command {
  return new Command('server')
    .description('start a compute server: one worker process per core, serving controllers')
    .option('--bind <url>', 'listen for controllers here, e.g. tcp://0.0.0.0:5555 (repeatable)', collect, [])
    .option('--connect <url>', "dial out to a controller's listen address (repeatable)", collect, [])
    .option('--workers <n>', 'worker processes', positiveInt, os.availableParallelism())
    .option('--module <file>', 'preload this module: its exported functions can be called by name')
    .option('--worker-heap-mb <mb>', 'V8 heap limit of each worker (a job that exceeds it kills only its worker)', positiveInt)
    .option('--name <name>', 'server name shown to controllers (default: host-pid)')
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .action(async (opts: { bind: string[]; connect: string[]; workers: number; module?: string; name?: string; workerHeapMb?: number; logLevel: string }) => {
      if (opts.bind.length === 0 && opts.connect.length === 0) throw new InvalidArgumentError('give --bind and/or --connect');
      const logger = pino({ level: opts.logLevel, base: { role: 'server' } }, pino.destination(2));
      const server = new ComputeServer({ ...opts, logger });
      const stop = async (why: string) => {
        logger.info({ why }, 'stopping');
        await server.close();
        process.exit(0);
      };
      process.once('SIGTERM', () => void stop('SIGTERM'));
      process.once('SIGINT', () => void stop('SIGINT'));
      // Started by a controller: go when it goes.
      if (process.send) process.once('disconnect', () => void stop('parent gone'));
      await server.start();
      for (const endpoint of server.endpoints) process.stdout.write(`listening on ${endpoint}\n`);
    });
}
