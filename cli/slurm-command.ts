/**
 * `tsgather cluster up|status|down --slurm`: compute servers as Slurm batch jobs that dial in to a
 * controller's `listen` address, like dask-jobqueue's SLURMCluster and ipcluster's Slurm launcher.
 * The cluster's folder keeps the job ids (state.json), the batch script and the servers' key pair.
 */
import { Command, Option } from 'commander';
import { readKeyPairFile, publicKeyArgument, keyToHex, KeyError } from '../protocol/index.js';
import { SlurmConfigError, SlurmUnavailableError, SlurmCommandError, type SlurmOptions } from '../launch/index.js';
import { batchScript } from '../launch/slurm-script.js';
import { openCluster, prepareCluster, resolveOptions } from '../launch/slurm-cluster.js';
import { readState } from '../launch/slurm-state.js';
import { SlurmCommands } from '../launch/slurm-commands.js';
import { SlurmJobs, explainReason } from '../launch/slurm-jobs.js';
import { defaultStateDir } from '../launch/slurm-options.js';
import { collect, positiveInt, wholeNumber } from './arguments.js';
import { EXIT, fail } from './exit-codes.js';
import { serverLogSays } from './slurm-log.js';
import path from 'node:path';

export interface SlurmUpFlags {
  slurm?: boolean;
  connect?: string;
  controllerKey?: string;
  keyFile?: string;
  jobs: number;
  cores?: number;
  memory?: string;
  time?: string;
  partition?: string;
  account?: string;
  qos?: string;
  constraint?: string;
  sbatch: string[];
  prologue: string[];
  label: string[];
  name: string;
  stateDir?: string;
  logDir?: string;
  signalSeconds?: number;
  drainSeconds?: number;
  idleExit?: number;
  remoteCommand?: string;
  serverArg: string[];
  printScript?: boolean;
  workers?: string;
  module?: string;
  workerHeapMb?: string;
  spareWorkers?: string;
  logLevel?: string;
}

const DEFAULT_NAME = 'tsgather';

/** The Slurm options of `cluster up` (beside its ssh ones). */
export function addSlurmUpOptions(command: Command): Command {
  return command
    .option('--slurm', 'submit the servers as Slurm batch jobs that dial --connect (see docs/slurm.md)')
    .option('--jobs <n>', 'with --slurm: jobs to submit, one server each', wholeNumber, 1)
    .option('--cores <n>', 'with --slurm: CPUs per job (--cpus-per-task) and workers per server (default 1)', positiveInt)
    .option('--memory <size>', "with --slurm: memory per job (--mem), e.g. '4G'")
    .option('--time <walltime>', "with --slurm: wall-time per job (--time), e.g. '2:00:00'")
    .option('--partition <name>', 'with --slurm: the partition')
    .option('--account <name>', 'with --slurm: the account to charge')
    .option('--qos <name>', 'with --slurm: the quality of service')
    .option('--constraint <features>', 'with --slurm: node features the jobs need')
    .option('--sbatch <option>', 'with --slurm: a further #SBATCH option, e.g. --sbatch=--gres=gpu:1 (repeatable)', collect, [])
    .option('--prologue <line>', "with --slurm: a shell line run before the server, e.g. 'module load nodejs' (repeatable)", collect, [])
    .option('--label <label>', 'with --slurm: a label for the servers, so jobs with { labels } go to them (repeatable)', collect, [])
    .option('--name <name>', 'with --slurm: the cluster: job name, server name prefix, state folder', DEFAULT_NAME)
    .option('--state-dir <dir>', `with --slurm: where cluster folders go, on a file system the nodes see (default ${defaultStateDir()})`)
    .option('--log-dir <dir>', "with --slurm: the jobs' log folder (default: logs in the cluster's folder)")
    .option('--signal-seconds <s>', 'with --slurm: Slurm signals each server to drain this long before its wall-time (default 120)', positiveInt)
    .option('--drain-seconds <s>', 'with --slurm: how long running jobs may finish when a server drains (default 60)', wholeNumber)
    .option('--idle-exit <s>', 'with --slurm: a server exits once it has had no controller this long (default 300)', positiveInt)
    .option('--print-script', 'with --slurm: print the batch script and submit nothing');
}

function slurmOptions(flags: SlurmUpFlags): SlurmOptions {
  const serverArgs = [...flags.serverArg];
  const passed: Array<[string, string | undefined]> = [
    ['--module', flags.module],
    ['--worker-heap-mb', flags.workerHeapMb],
    ['--spare-workers', flags.spareWorkers],
    ['--log-level', flags.logLevel],
  ];
  for (const [flag, value] of passed) if (value !== undefined) serverArgs.push(flag, value);
  return {
    jobs: flags.jobs,
    cores: flags.cores ?? (flags.workers ? Number(flags.workers) : undefined),
    memory: flags.memory,
    walltime: flags.time,
    partition: flags.partition,
    account: flags.account,
    qos: flags.qos,
    constraint: flags.constraint,
    extraDirectives: flags.sbatch,
    prologue: flags.prologue,
    labels: flags.label,
    name: flags.name,
    stateDir: flags.stateDir,
    logDir: flags.logDir,
    signalSeconds: flags.signalSeconds,
    drainSeconds: flags.drainSeconds,
    idleExitSeconds: flags.idleExit,
    command: flags.remoteCommand === 'npx tsgather' ? undefined : flags.remoteCommand,
    serverArgs,
  };
}

/** An error of ours (bad options, Slurm missing or refusing) as one clear line; anything else is thrown on. */
function failClearly(error: unknown, code: number = EXIT.failure): void {
  if (error instanceof TypeError || error instanceof KeyError) return fail(error.message, EXIT.usage);
  if (error instanceof SlurmConfigError || error instanceof SlurmUnavailableError || error instanceof SlurmCommandError) return fail(error.message, code);
  throw error;
}

export async function slurmUp(flags: SlurmUpFlags, command: Command): Promise<void> {
  if (!flags.connect) return command.error("error: --slurm needs --connect: the controller's listen address as the nodes reach it, e.g. tcp://login1:5556", { exitCode: EXIT.usage });
  if (!flags.controllerKey) return command.error("error: --slurm needs --controller-key: the controller's public key (or its .pub file)", { exitCode: EXIT.usage });
  try {
    const options = resolveOptions(slurmOptions(flags));
    const controllerKey = keyToHex(publicKeyArgument(flags.controllerKey, '--controller-key'));
    if (flags.keyFile) readKeyPairFile(flags.keyFile); // refused now if missing, unreadable or readable by others
    if (flags.printScript) {
      const keyFile = flags.keyFile ?? path.join(options.folder, 'server.key');
      process.stdout.write(batchScript(options, { connect: flags.connect, controllerKey, keyFile }));
      return;
    }
    const prepared = await prepareCluster(options, flags.connect, flags.keyFile);
    const jobs = openCluster(options, prepared, { connect: flags.connect, controllerKey }, true);
    const ids = await jobs.submit(options.jobs);
    for (const id of ids) process.stdout.write(`${id}\n`);
    process.stderr.write(
      `submitted Slurm job(s) ${ids.join(', ') || '(none)'} of cluster ${options.name} (state ${path.join(options.folder, 'state.json')})\n` +
        `servers dial ${flags.connect}; their public key is in ${prepared.publicFile}: the controller admits it with authorizedKeys\n` +
        `logs: ${path.join(options.logDir, `${options.name}-<job id>.log`)}\n`,
    );
  } catch (error) {
    failClearly(error);
  }
}

interface StateFlags {
  name: string;
  stateDir?: string;
}

function openState(flags: StateFlags): SlurmJobs | undefined {
  const folder = path.join(path.resolve(flags.stateDir ?? defaultStateDir()), flags.name);
  const state = readState(folder);
  if (!state) {
    fail(`no Slurm cluster named ${flags.name} (no ${path.join(folder, 'state.json')}): start one with tsgather cluster up --slurm`, EXIT.notRunning);
    return undefined;
  }
  return new SlurmJobs(new SlurmCommands(process.env), folder, state);
}

export async function slurmStatus(flags: StateFlags): Promise<void> {
  const jobs = openState(flags);
  if (!jobs) return;
  try {
    await jobs.refresh();
  } catch (error) {
    return failClearly(error);
  }
  const live = jobs.live();
  process.stdout.write(`cluster ${jobs.state.name}: servers dial ${jobs.state.connect}; ${live.length} job(s) live\n`);
  for (const job of jobs.jobs.values()) {
    if (job.endedAt !== undefined && Date.now() - job.endedAt > 3_600_000) continue;
    const slurm = job.state === 'PENDING' && job.reason ? `PENDING (${explainReason(job.reason)})` : (job.state ?? 'UNKNOWN');
    const server = job.state === 'RUNNING' ? `; server: ${serverLogSays(jobs.logFile(job.id))}` : '';
    process.stdout.write(`  job ${job.id}: ${slurm}${job.node ? ` on ${job.node}` : ''}${server}\n`);
  }
  if (live.length === 0) process.exitCode = EXIT.notRunning;
}

export async function slurmDown(flags: StateFlags & { drainSeconds?: number }): Promise<void> {
  const jobs = openState(flags);
  if (!jobs) return;
  try {
    await jobs.refresh();
    const live = jobs.live();
    const pending = live.filter((job) => job.runningSince === undefined).map((job) => job.id);
    const running = live.filter((job) => job.runningSince !== undefined).map((job) => job.id);
    if (pending.length > 0) await jobs.cancel(pending);
    if (running.length > 0) {
      // Drained first: each server finishes its running jobs and gives back its queued ones; then whatever is left is cancelled.
      await jobs.drain(running);
      const deadline = Date.now() + ((flags.drainSeconds ?? 60) + 15) * 1000;
      while (Date.now() < deadline) {
        await jobs.refresh();
        if (running.every((id) => jobs.jobs.get(id)!.endedAt !== undefined)) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      const left = running.filter((id) => jobs.jobs.get(id)!.endedAt === undefined);
      if (left.length > 0) await jobs.cancel(left);
    }
    process.stderr.write(`cluster ${flags.name}: ${pending.length} pending job(s) cancelled, ${running.length} server(s) drained and stopped\n`);
    if (live.length === 0) process.exitCode = EXIT.notRunning;
  } catch (error) {
    failClearly(error);
  }
}

/** `cluster status`: only Slurm clusters keep a state to show. */
export function statusCommand(): Command {
  return new Command('status')
    .description('with --slurm: the jobs of a Slurm cluster, as squeue and their servers say')
    .addOption(new Option('--slurm', 'a Slurm cluster (required: ssh hosts keep no state here; use tsgather server status on them)').makeOptionMandatory())
    .option('--name <name>', 'the cluster', DEFAULT_NAME)
    .option('--state-dir <dir>', `where cluster folders are (default ${defaultStateDir()})`)
    .action((flags: StateFlags) => slurmStatus(flags));
}
