/**
 * The options of a Slurm launcher (`slurm({...})`, `tsgather cluster up --slurm`), checked and
 * filled with defaults before anything runs: a value Slurm would reject, or one that could break
 * out of its line of the batch script, is a TypeError naming the option and what it takes.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

export interface SlurmOptions {
  /** Jobs (one compute server each) submitted at the start (default 1; 0 to wait for scale or adapt). */
  jobs?: number;
  /** CPUs per job (`--cpus-per-task`), and the server's worker processes (default 1). */
  cores?: number;
  /** Memory per job (`--mem`): '4G', '500M', or a number of megabytes (default: the partition's). */
  memory?: string | number;
  /** Wall-time per job (`--time`): 'MM', 'HH:MM:SS', 'D-HH:MM:SS'... (default: the partition's). */
  walltime?: string;
  partition?: string;
  account?: string;
  qos?: string;
  /** Node features the jobs need (`--constraint`), e.g. 'big' or 'skylake&ib'. */
  constraint?: string;
  /** More `#SBATCH` options, one per entry, e.g. ['--gres=gpu:1', '--exclusive']. */
  extraDirectives?: string[];
  /** Shell lines run before the server, e.g. ['module load nodejs/22', 'source ~/env.sh']. */
  prologue?: string[];
  /** The network interface of this machine whose address servers dial (e.g. 'ib0'). */
  interface?: string;
  /** The address (name or IP) of this machine servers dial (default: from `interface`, else the host's address). */
  address?: string;
  /** The port the controller listens on for servers (default: a free one). */
  port?: number;
  /** Server labels (`tsgather server --label`), so jobs with `{ labels }` go to these servers. */
  labels?: string[];
  /** The cluster's name: Slurm job name, server name prefix, state folder (default tsg-<random>). */
  name?: string;
  /** Where state folders go; must be on a file system the compute nodes see (default ~/.tsgather/slurm). */
  stateDir?: string;
  /** Where each job's log goes, as `<name>-<job id>.log` (default: `logs` in the state folder). */
  logDir?: string;
  /** Slurm signals each server (USR1) this long before its wall-time, so it drains in time (default 120 s; Slurm may signal up to 60 s early). */
  signalSeconds?: number;
  /** How long running jobs may finish when a server drains, before they go back to the controller (default 60 s). */
  drainSeconds?: number;
  /** A server exits once it has had no controller for this long (default 300 s). */
  idleExitSeconds?: number;
  /** How to run tsgather on the nodes, a shell snippet (default: this Node and this tsgather, by absolute path). */
  command?: string;
  /** Further `tsgather server` arguments, e.g. ['--spare-workers', '0']. */
  serverArgs?: string[];
  /** Servers spawnScatterGather waits for before it resolves (default 0: it resolves once the jobs are submitted). */
  wait?: number;
  /** A job pending longer is reported with Slurm's reason (default 600000 ms). */
  pendingTimeoutMs?: number;
  /** A job running this long whose server has not reached the controller is reported with its log (default 120000 ms). */
  startTimeoutMs?: number;
  /** Most jobs pending at once: scaling submits no more until some start (default 10). */
  maxPending?: number;
  /** How often the launcher reads squeue (while it has jobs) and the pool's status (default 5000 ms; keep it at seconds on a shared cluster). */
  pollMs?: number;
  /** adapt() releases jobs only after work has stayed below them this long (default 60000 ms). */
  scaleDownDelayMs?: number;
  /** The environment of sbatch, squeue and scancel (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** SlurmOptions with every default filled in and every value checked. */
export interface ResolvedSlurmOptions extends Required<Omit<SlurmOptions, 'memory' | 'walltime' | 'partition' | 'account' | 'qos' | 'constraint' | 'interface' | 'address' | 'port'>> {
  memoryMb?: number;
  walltime?: string;
  walltimeSeconds?: number;
  partition?: string;
  account?: string;
  qos?: string;
  constraint?: string;
  interface?: string;
  address?: string;
  port?: number;
  /** This cluster's folder: state file, server key, batch script, logs by default. */
  folder: string;
}

const SLURM_WORD = /^[\w.+:,@%=/-]+$/;
const CONSTRAINT = /^[\w.+:,&|*()[\]!-]+$/;
const LABEL = /^[\w.:=/-]+$/;
const NAME = /^[A-Za-z][\w.-]{0,62}$/;

function whole(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw new TypeError(`slurm ${name} must be a whole number ≥ ${min} (got ${String(value)})`);
  return value;
}

function portNumber(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) throw new TypeError(`slurm port must be a whole number from 1 to 65535 (got ${String(value)})`);
  return value;
}

function positive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new TypeError(`slurm ${name} must be a number > 0 (got ${String(value)})`);
  return value;
}

function word(name: string, value: unknown, pattern = SLURM_WORD): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !pattern.test(value)) throw new TypeError(`slurm ${name} must be one word without spaces or quotes (got ${JSON.stringify(value)})`);
  return value;
}

function lines(name: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((line) => typeof line !== 'string' || /[\r\n]/.test(line))) {
    throw new TypeError(`slurm ${name} must be a list of strings, each one line`);
  }
  return value as string[];
}

/**
 * Seconds in a Slurm time: 'M', 'M:S', 'H:M:S', 'D-H', 'D-H:M', 'D-H:M:S'; undefined for
 * 'UNLIMITED'/'INFINITE'; throws on anything else.
 */
export function walltimeSeconds(text: string): number | undefined {
  if (/^(unlimited|infinite)$/i.test(text)) return undefined;
  const match = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(text.trim());
  if (!match) throw new TypeError(`'${text}' is not a Slurm time: give minutes, 'HH:MM:SS' or 'D-HH:MM:SS'`);
  const [, days, a, b, c] = match;
  const n = (s: string | undefined) => Number(s ?? 0);
  if (days !== undefined) return n(days) * 86400 + n(a) * 3600 + n(b) * 60 + n(c); // D-H[:M[:S]]
  if (c !== undefined) return n(a) * 3600 + n(b) * 60 + n(c); // H:M:S
  if (b !== undefined) return n(a) * 60 + n(b); // M:S
  return n(a) * 60; // M
}

/** Megabytes in a Slurm memory size: a number of MB, or '500M', '4G', '1T', '2048K' (Slurm's units are binary). */
export function memoryMb(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new TypeError(`slurm memory must be a number of megabytes > 0 (got ${value})`);
    return Math.ceil(value);
  }
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)B?$/i.exec(value.trim());
  if (!match || Number(match[1]) <= 0) throw new TypeError(`slurm memory must be a size such as '500M', '4G' or a number of megabytes (got ${JSON.stringify(value)})`);
  const factor = { K: 1 / 1024, '': 1, M: 1, G: 1024, T: 1024 * 1024 }[match[2]!.toUpperCase() as 'K' | '' | 'M' | 'G' | 'T'];
  return Math.ceil(Number(match[1]) * factor);
}

/** Slurm's own spelling of a number of seconds: D-HH:MM:SS or HH:MM:SS. */
export function formatWalltime(total: number): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const days = Math.floor(total / 86400);
  const hms = `${pad(Math.floor((total % 86400) / 3600))}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
  return days > 0 ? `${days}-${hms}` : hms;
}

export function defaultStateDir(): string {
  return path.join(os.homedir(), '.tsgather', 'slurm');
}

export function resolveSlurmOptions(options: SlurmOptions, defaultCommand: string): ResolvedSlurmOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('slurm() takes an options object');
  const name = options.name ?? `tsg-${randomBytes(3).toString('hex')}`;
  if (!NAME.test(name)) throw new TypeError(`slurm name must start with a letter and use only letters, digits, '.', '_' and '-' (at most 63) (got ${JSON.stringify(name)})`);
  const stateDir = path.resolve(options.stateDir ?? defaultStateDir());
  const folder = path.join(stateDir, name);
  const walltime = options.walltime === undefined ? undefined : String(options.walltime);
  const seconds = walltime === undefined ? undefined : walltimeSeconds(walltime);
  const signalSeconds = whole('signalSeconds', options.signalSeconds ?? 120, 1);
  if (seconds !== undefined && seconds <= signalSeconds) {
    throw new TypeError(
      `slurm walltime ${formatWalltime(seconds)} is not longer than signalSeconds (${signalSeconds} s): each server would be told to drain as soon as it starts; give a longer walltime or a smaller signalSeconds`,
    );
  }
  if (seconds === 0) throw new TypeError('slurm walltime must be more than 0');
  const extraDirectives = lines('extraDirectives', options.extraDirectives);
  for (const directive of extraDirectives) {
    if (!/^--?[A-Za-z]/.test(directive.trim())) throw new TypeError(`slurm extraDirectives entries are sbatch options such as '--gres=gpu:1' (got ${JSON.stringify(directive)})`);
  }
  const labels = lines('labels', options.labels);
  for (const label of labels) if (!LABEL.test(label)) throw new TypeError(`slurm label ${JSON.stringify(label)} may use letters, digits and . : = / - _`);
  const command = options.command ?? defaultCommand;
  if (typeof command !== 'string' || command.trim() === '' || /[\r\n]/.test(command)) throw new TypeError('slurm command must be one line of shell');
  return {
    jobs: whole('jobs', options.jobs ?? 1, 0),
    cores: whole('cores', options.cores ?? 1, 1),
    memoryMb: options.memory === undefined ? undefined : memoryMb(options.memory),
    walltime: seconds === undefined ? walltime : formatWalltime(seconds),
    walltimeSeconds: seconds,
    partition: word('partition', options.partition),
    account: word('account', options.account),
    qos: word('qos', options.qos),
    constraint: word('constraint', options.constraint, CONSTRAINT),
    extraDirectives,
    prologue: lines('prologue', options.prologue),
    interface: word('interface', options.interface),
    address: word('address', options.address),
    port: options.port === undefined ? undefined : portNumber(options.port),
    labels,
    name,
    stateDir,
    folder,
    logDir: path.resolve(options.logDir ?? path.join(folder, 'logs')),
    signalSeconds,
    drainSeconds: whole('drainSeconds', options.drainSeconds ?? 60, 0),
    idleExitSeconds: whole('idleExitSeconds', options.idleExitSeconds ?? 300, 1),
    command,
    serverArgs: lines('serverArgs', options.serverArgs),
    wait: whole('wait', options.wait ?? 0, 0),
    pendingTimeoutMs: positive('pendingTimeoutMs', options.pendingTimeoutMs ?? 600_000),
    startTimeoutMs: positive('startTimeoutMs', options.startTimeoutMs ?? 120_000),
    maxPending: whole('maxPending', options.maxPending ?? 10, 1),
    pollMs: positive('pollMs', options.pollMs ?? 5000),
    scaleDownDelayMs: positive('scaleDownDelayMs', options.scaleDownDelayMs ?? 60_000),
    env: options.env ?? process.env,
  };
}
