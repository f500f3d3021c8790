/**
 * The batch script of one compute server job. It holds no secret: the server reads its secret key
 * from a file (mode 0600, in the cluster's folder), and the controller's key on its command line is
 * the public one. The server replaces the batch shell (`exec`), so Slurm's `--signal=B:USR1@N`
 * reaches it before the wall-time and it drains, and it names itself after the job id.
 */
import type { ResolvedSlurmOptions } from './slurm-options.js';

export interface ServerLink {
  /** The controller's listen address, as the servers dial it: tcp://host:port. */
  connect: string;
  /** The controller's public key, 64 hex digits. */
  controllerKey: string;
  /** The servers' secret key file. */
  keyFile: string;
}

/** POSIX shell quoting. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The `tsgather server` arguments of every job; `$SLURM_JOB_ID` in the name is expanded by the server. */
export function serverArguments(options: ResolvedSlurmOptions, link: ServerLink): string[] {
  const args = [
    'server',
    '--connect',
    link.connect,
    '--controller-key',
    link.controllerKey,
    '--key-file',
    link.keyFile,
    '--name',
    `${options.name}-$SLURM_JOB_ID`,
    '--workers',
    String(options.cores),
    '--idle-exit',
    String(options.idleExitSeconds),
    '--drain-seconds',
    String(options.drainSeconds),
  ];
  for (const label of options.labels) args.push('--label', label);
  return [...args, ...options.serverArgs];
}

export function batchScript(options: ResolvedSlurmOptions, link: ServerLink): string {
  const directives = [
    `--job-name=${options.name}`,
    `--output=${options.logDir}/%x-%j.log`,
    '--nodes=1',
    '--ntasks=1',
    `--cpus-per-task=${options.cores}`,
    options.memoryMb !== undefined && `--mem=${options.memoryMb}M`,
    options.walltime !== undefined && `--time=${options.walltime}`,
    options.partition !== undefined && `--partition=${options.partition}`,
    options.account !== undefined && `--account=${options.account}`,
    options.qos !== undefined && `--qos=${options.qos}`,
    options.constraint !== undefined && `--constraint=${options.constraint}`,
    `--signal=B:USR1@${options.signalSeconds}`,
    ...options.extraDirectives.map((directive) => directive.trim()),
  ].filter((line): line is string => typeof line === 'string');
  const server = serverArguments(options, link).map(shellQuote).join(' ');
  return [
    '#!/bin/bash',
    ...directives.map((directive) => `#SBATCH ${directive}`),
    '',
    `# A tsgather compute server for the controller at ${link.connect} (cluster ${options.name}).`,
    ...(options.prologue.length > 0 ? ['', '# prologue', ...options.prologue, ''] : []),
    `# It drains on SIGUSR1 (${options.signalSeconds} s before the wall-time), and exits once no controller has been in session for ${options.idleExitSeconds} s.`,
    `echo "tsgather: job $SLURM_JOB_ID on $(hostname): dialling the controller at ${link.connect}" >&2`,
    `exec ${options.command} ${server}`,
    '',
  ].join('\n');
}
