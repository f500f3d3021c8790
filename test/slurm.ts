/**
 * A real Slurm for tests, on this one machine: `munged`, `slurmctld` and one `slurmd -N name` per
 * node, started by pid (no systemd) with a generated munge key and slurm.conf in a temporary
 * folder, and stopped by pid after. Each node runs in a network namespace of its own, joined to
 * this one by a bridge, with its own NodeAddr and `%n` paths, so that nodes with different CPUs,
 * features and partitions are real machines to Slurm. Ports are free ones, not Slurm's defaults.
 * Readiness is polled with `scontrol ping` and `sinfo`. Needs root, as CI runs; otherwise it fails
 * saying why.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { waitUntil } from './helpers.js';

export interface SlurmNodeSpec {
  name: string;
  cpus: number;
  memoryMb: number;
  features?: string[];
}

export interface SlurmPartitionSpec {
  name: string;
  nodes: string[];
  /** Slurm's MaxTime in minutes (default: unlimited). */
  maxMinutes?: number;
  default?: boolean;
}

export interface SlurmSpec {
  nodes: SlurmNodeSpec[];
  partitions: SlurmPartitionSpec[];
}

const PROGRAMS = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scancel', 'sinfo', 'scontrol', 'nsenter', 'ip'];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '0.0.0.0', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

function run(program: string, args: string[], env?: NodeJS.ProcessEnv): string {
  try {
    return execFileSync(program, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`\`${program} ${args.join(' ')}\` failed: ${stderr || (error as Error).message}`);
  }
}

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(join(dir, program)));
}

export class TestSlurm {
  /** The environment Slurm's commands need (SLURM_CONF): give it to sbatch, squeue and tsgather. */
  readonly env: NodeJS.ProcessEnv;
  /** This machine's address on the nodes' bridge: where servers in the nodes reach a controller here. */
  readonly hostAddress: string;
  readonly bridge: string;
  readonly conf: string;
  private readonly daemons = new Map<string, ChildProcess>();
  private readonly logs = new Map<string, string[]>();
  private readonly namespaces: string[] = [];

  private constructor(
    readonly dir: string,
    readonly spec: SlurmSpec,
    private readonly tag: string,
    private readonly subnet: string,
  ) {
    this.conf = join(dir, 'slurm.conf');
    this.env = { ...process.env, SLURM_CONF: this.conf };
    this.hostAddress = `${subnet}.1`;
    this.bridge = `${tag}br`;
  }

  static async start(spec: SlurmSpec): Promise<TestSlurm> {
    if (process.getuid?.() !== 0) throw new Error('the Slurm tests start munged, slurmctld and slurmd and make network namespaces: they need root (CI runs as root)');
    const missing = PROGRAMS.filter((program) => !onPath(program) && !existsSync(`/usr/sbin/${program}`));
    if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: test/setup.sh installs the Debian packages slurm-wlm, munge, iproute2 and util-linux (run it as root)`);
    removeLeftovers();
    const tag = `tsgs${process.pid % 100000}`;
    const subnet = `10.79.${process.pid % 250}`;
    const slurm = new TestSlurm(mkdtempSync(join(tmpdir(), 'tsg-slurm-')), spec, tag, subnet);
    try {
      await slurm.boot();
    } catch (error) {
      await slurm.stop();
      throw error;
    }
    return slurm;
  }

  /** Runs a Slurm command against this cluster; its stdout. */
  command(program: string, ...args: string[]): string {
    return run(program, args, this.env);
  }

  /** Processes whose command line mentions `text` (a state folder, say), wherever they run. */
  processesMentioning(text: string): number[] {
    const found: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text) && isLive(Number(entry))) found.push(Number(entry));
      } catch {
        // gone meanwhile
      }
    }
    return found;
  }

  /** Processes in the nodes' namespaces other than their slurmd: slurmstepd, and the jobs' servers and workers. */
  jobProcesses(): number[] {
    const daemons = new Set([...this.daemons.values()].map((proc) => proc.pid));
    return this.namespaces.flatMap((ns) =>
      tryRun('ip', ['netns', 'pids', ns])
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .filter((pid) => !daemons.has(pid) && isLive(pid)),
    );
  }

  /** Job ids Slurm still lists (pending, running or completing). */
  liveJobs(): string[] {
    return this.command('squeue', '-h', '-o', '%i').split('\n').filter(Boolean);
  }

  /** The daemons' logs, for a failure message. */
  logTail(lines = 30): string {
    const logDir = join(this.dir, 'log');
    if (!existsSync(logDir)) return '';
    return readdirSync(logDir)
      .map((file) => `== ${file}\n${readFileSync(join(logDir, file), 'utf8').split('\n').slice(-lines).join('\n')}`)
      .join('\n');
  }

  async stop(): Promise<void> {
    // slurmd first (it would otherwise report its jobs to a controller that is gone), then whatever its jobs left.
    for (const proc of [...this.daemons.values()].reverse()) await stopDaemon(proc);
    for (const ns of this.namespaces) killNamespace(ns);
    for (const ns of this.namespaces) tryRun('ip', ['netns', 'del', ns]);
    tryRun('ip', ['link', 'del', this.bridge]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async boot(): Promise<void> {
    for (const sub of ['munge', 'state', 'spool', 'log']) mkdirSync(join(this.dir, sub), { mode: 0o700 });
    chmodSync(this.dir, 0o755);
    const mungeKey = join(this.dir, 'munge', 'munge.key');
    writeFileSync(mungeKey, randomBytes(1024), { mode: 0o400 });
    const socket = join(this.dir, 'munge', 'munge.socket');
    this.daemon('munged', 'munged', [
      '-F',
      '--force',
      `--key-file=${mungeKey}`,
      `--socket=${socket}`,
      `--pid-file=${join(this.dir, 'munge', 'munged.pid')}`,
      `--log-file=${join(this.dir, 'log', 'munged.log')}`,
      `--seed-file=${join(this.dir, 'munge', 'munged.seed')}`,
    ]);
    await waitUntil(() => existsSync(socket), 10_000, 'munged to make its socket');
    this.makeNetwork();
    const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
    writeFileSync(this.conf, this.slurmConf(socket, ctldPort, slurmdPort));
    this.daemon('slurmctld', 'slurmctld', ['-D', '-i', '-f', this.conf]);
    await this.poll(() => /is UP/.test(tryRun('scontrol', ['ping'], this.env)), 'slurmctld to answer scontrol ping');
    for (const node of this.spec.nodes) this.startNode(node.name);
    await this.poll(() => this.nodeStates().every((state) => state === 'idle'), 'every slurmd to register (sinfo: idle)');
  }

  /** Starts (again) the slurmd of one node, in that node's namespace. */
  startNode(name: string): void {
    this.daemon(`slurmd-${name}`, 'nsenter', [`--net=/run/netns/${this.tag}-${name}`, 'slurmd', '-D', '-N', name, '-f', this.conf]);
  }

  /** Each node's state as sinfo says it (idle, mix, alloc, down, ...). */
  nodeStates(): string[] {
    return tryRun('sinfo', ['-h', '-N', '-o', '%t'], this.env)
      .split('\n')
      .filter(Boolean)
      .map((state) => state.replace(/[*~#!%$@^-]$/, ''));
  }

  private async poll(condition: () => boolean, what: string): Promise<void> {
    try {
      await waitUntil(
        () => {
          const dead = [...this.daemons].find(([, proc]) => proc.exitCode !== null || proc.signalCode !== null);
          if (dead) throw new Error(`${dead[0]} exited (${dead[1].exitCode ?? dead[1].signalCode}) while waiting for ${what}: ${this.logs.get(dead[0])!.join('')}`);
          return condition();
        },
        30_000,
        what,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${this.logTail()}`);
    }
  }

  private daemon(name: string, program: string, args: string[]): void {
    const proc = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], env: this.env });
    const log: string[] = [];
    this.logs.set(name, log);
    proc.stdout!.setEncoding('utf8').on('data', (text: string) => log.push(text));
    proc.stderr!.setEncoding('utf8').on('data', (text: string) => log.push(text));
    proc.once('error', (error) => log.push(`could not run ${program}: ${error.message}`));
    this.daemons.set(name, proc);
  }

  /** A bridge here at `subnet.1` and a namespace per node at `subnet.2`, `.3`, ... with a veth on the bridge. */
  private makeNetwork(): void {
    run('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${this.hostAddress}/24`, 'dev', this.bridge]);
    run('ip', ['link', 'set', this.bridge, 'up']);
    this.spec.nodes.forEach((node, i) => {
      const ns = `${this.tag}-${node.name}`;
      const veth = `${this.tag}v${i}`;
      run('ip', ['netns', 'add', ns]);
      this.namespaces.push(ns);
      run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      run('ip', ['link', 'set', veth, 'master', this.bridge]);
      run('ip', ['link', 'set', veth, 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${this.nodeAddress(node.name)}/24`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', ns, 'route', 'add', 'default', 'via', this.hostAddress]);
    });
  }

  nodeAddress(name: string): string {
    return `${this.subnet}.${this.spec.nodes.findIndex((node) => node.name === name) + 2}`;
  }

  /** The network namespace a node runs in (its processes: `ip netns pids`). */
  namespaceOf(name: string): string {
    return `${this.tag}-${name}`;
  }

  private slurmConf(mungeSocket: string, ctldPort: number, slurmdPort: number): string {
    const d = this.dir;
    const lines = [
      `ClusterName=${this.tag}`,
      `SlurmctldHost=${hostname().split('.')[0]}(${this.hostAddress})`,
      'MailProg=/bin/true',
      'SlurmUser=root',
      'SlurmdUser=root',
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${mungeSocket}`,
      `StateSaveLocation=${d}/state`,
      `SlurmdSpoolDir=${d}/spool/%n`,
      `SlurmctldPidFile=${d}/state/slurmctld.pid`,
      `SlurmdPidFile=${d}/spool/slurmd-%n.pid`,
      `SlurmctldLogFile=${d}/log/slurmctld.log`,
      `SlurmdLogFile=${d}/log/slurmd-%n.log`,
      'SlurmctldDebug=info',
      'SlurmdDebug=info',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core_Memory',
      // Without it a job that gives no --mem would take a whole node's memory.
      'DefMemPerCPU=100',
      'AccountingStorageType=accounting_storage/none',
      'JobAcctGatherType=jobacct_gather/none',
      'JobCompType=jobcomp/none',
      'MpiDefault=none',
      'ReturnToService=2',
      // Nodes may claim more CPUs than this machine has: they are namespaces on one machine.
      'SlurmdParameters=config_overrides',
      'SchedulerType=sched/backfill',
      'MinJobAge=30',
      'KillWait=5',
      'InactiveLimit=0',
      'MessageTimeout=10',
      ...this.spec.nodes.map(
        (node) =>
          `NodeName=${node.name} NodeAddr=${this.nodeAddress(node.name)} CPUs=${node.cpus} RealMemory=${node.memoryMb}` +
          `${node.features?.length ? ` Feature=${node.features.join(',')}` : ''} State=UNKNOWN`,
      ),
      ...this.spec.partitions.map((p) => `PartitionName=${p.name} Nodes=${p.nodes.join(',')} MaxTime=${p.maxMinutes ?? 'INFINITE'} Default=${p.default ? 'YES' : 'NO'} State=UP`),
    ];
    return `${lines.join('\n')}\n`;
  }
}

function tryRun(program: string, args: string[], env?: NodeJS.ProcessEnv): string {
  try {
    return run(program, args, env);
  } catch {
    return '';
  }
}

async function stopDaemon(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(timer);
}

/** Every process left in a node's namespace (slurmstepd, a job's processes). */
function killNamespace(ns: string): void {
  for (const pid of tryRun('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** Namespaces and bridges of an earlier run that was killed before its clean-up (its pid no longer runs). */
function removeLeftovers(): void {
  for (const line of tryRun('ip', ['netns', 'list']).split('\n')) {
    const match = /^tsgs(\d+)-\S+/.exec(line);
    if (!match || isRunning(Number(match[1]))) continue;
    killNamespace(match[0]);
    tryRun('ip', ['netns', 'del', match[0]]);
  }
  for (const line of tryRun('ip', ['-o', 'link', 'show', 'type', 'bridge']).split('\n')) {
    const match = /^\d+: (tsgs(\d+)br)/.exec(line);
    if (match && !isRunning(Number(match[2]))) tryRun('ip', ['link', 'del', match[1]!]);
  }
}

/** Running, and not a zombie waiting for its parent. */
function isLive(pid: number): boolean {
  try {
    return /^\S+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] !== 'Z';
  } catch {
    return false;
  }
}

function isRunning(pidSuffix: number): boolean {
  // The tag keeps the last five digits of the pid: a live process with that suffix may own it.
  return readdirSync('/proc').some((entry) => /^\d+$/.test(entry) && Number(entry) % 100000 === pidSuffix);
}
