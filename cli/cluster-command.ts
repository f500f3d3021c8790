/**
 * `tsgather cluster up|down HOST...`: starts (stops) a compute server daemon on each host over
 * SSH with the system's `ssh`, like ipcluster's SSH launcher and Dask's SSHCluster. With --slurm,
 * the servers are Slurm batch jobs instead (slurm-command.ts).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { collect, logLevelOption, wholeNumber } from './arguments.js';
import { EXIT, fail } from './exit-codes.js';
import { parseHost, parseHostfile, runOverSsh, shellQuote, type SshHost, type SshOptions } from './ssh.js';
import { addSlurmUpOptions, slurmDown, slurmUp, statusCommand, type SlurmUpFlags } from './slurm-command.js';
import { defaultStateDir } from '../launch/slurm-options.js';

const DEFAULT_REMOTE_COMMAND = 'npx tsgather';
const DEFAULT_REMOTE_PIDFILE = '/tmp/tsgather-server.pid';
const DEFAULT_BIND = 'tcp://0.0.0.0:5555';

interface CommonFlags {
  hostfile?: string;
  remoteCommand: string;
  pidfile: string;
  ssh: string;
  sshConfig?: string;
  identity?: string;
  sshOption: string[];
}

interface UpFlags extends CommonFlags {
  bind?: string;
  connect?: string;
  workers?: string;
  module?: string;
  workerHeapMb?: string;
  spareWorkers?: string;
  logLevel?: string;
  logFile?: string;
  keyFile?: string;
  authorizedKeys?: string;
  controllerKey?: string;
  insecure?: boolean;
  serverArg: string[];
}

function withCommonFlags(command: Command): Command {
  return command
    .argument('[hosts...]', 'machines as [user@]host[:ssh-port]')
    .option('--hostfile <file>', 'more hosts, one per line (# comments allowed)')
    .option('--remote-command <cmd>', 'how to run tsgather on the hosts (a shell snippet)', DEFAULT_REMOTE_COMMAND)
    .option('--pidfile <file>', "the server's pid file on each host", DEFAULT_REMOTE_PIDFILE)
    .option('--ssh <program>', 'the ssh client', 'ssh')
    .option('-F, --ssh-config <file>', 'ssh config file (ssh -F)')
    .option('-i, --identity <file>', 'ssh identity file (ssh -i)')
    .option('-o, --ssh-option <Key=Value>', 'ssh option, e.g. -o UserKnownHostsFile=/dev/null (repeatable)', collect, []);
}

function hostsOf(args: string[], flags: CommonFlags, command: Command): SshHost[] {
  const specs = [...args];
  if (flags.hostfile) {
    try {
      specs.push(...parseHostfile(readFileSync(flags.hostfile, 'utf8')));
    } catch (error) {
      command.error(`error: cannot read --hostfile: ${(error as Error).message}`, { exitCode: EXIT.usage });
    }
  }
  if (specs.length === 0) command.error('error: no hosts: give them as arguments or with --hostfile', { exitCode: EXIT.usage });
  try {
    return specs.map(parseHost);
  } catch (error) {
    command.error(`error: ${(error as Error).message}`, { exitCode: EXIT.usage });
  }
}

const sshOptions = (flags: CommonFlags): SshOptions => ({ ssh: flags.ssh, config: flags.sshConfig, identity: flags.identity, options: flags.sshOption });

/** The `tsgather server` arguments each host gets. Flags naming files refer to paths on that host. */
function serverArgs(flags: UpFlags): string[] {
  const args = ['server', '--daemon', '--pidfile', flags.pidfile];
  if (flags.connect) args.push('--connect', flags.connect);
  if (flags.bind || !flags.connect) args.push('--bind', flags.bind ?? DEFAULT_BIND);
  const passed: Array<[string, string | boolean | undefined]> = [
    ['--workers', flags.workers],
    ['--module', flags.module],
    ['--worker-heap-mb', flags.workerHeapMb],
    ['--spare-workers', flags.spareWorkers],
    ['--log-level', flags.logLevel],
    ['--log-file', flags.logFile],
    ['--key-file', flags.keyFile],
    ['--authorized-keys', flags.authorizedKeys],
    ['--controller-key', flags.controllerKey],
    ['--insecure', flags.insecure],
  ];
  for (const [flag, value] of passed) {
    if (value === true) args.push(flag);
    else if (typeof value === 'string') args.push(flag, value);
  }
  return [...args, ...flags.serverArg];
}

/** A bound endpoint as controllers elsewhere reach it: wildcard and loopback addresses become the host's name. */
export function reachableUrl(endpoint: string, host: string): string {
  const bracketed = host.includes(':') ? `[${host}]` : host;
  return endpoint.replace(/^tcp:\/\/(?:0\.0\.0\.0|\*|\[::\]|::|127\.0\.0\.1|localhost)(?=:)/, `tcp://${bracketed}`);
}

function upCommand(): Command {
  const command = withCommonFlags(
    new Command('up').description('start a server daemon on each host over ssh (or, with --slurm, submit servers as Slurm jobs); prints the URLs to give spawnScatterGather'),
  )
    .option('--bind <url>', `where each server listens for controllers (default ${DEFAULT_BIND} unless --connect)`)
    .option('--connect <url>', "make each server dial in to a controller's listen address instead")
    .option('--workers <n>', 'worker processes per server (default: one per core)')
    .option('--module <file>', 'preload this module on each server (a path on the hosts)')
    .option('--worker-heap-mb <mb>', 'V8 heap limit of each worker')
    .option('--spare-workers <n>', 'started workers each server keeps waiting (default: one per worker; 0 for none)')
    .option('--log-level <level>', 'server log level', logLevelOption)
    .option('--log-file <file>', "each server's log file on its host (default: the pid file with .log)")
    .option('--key-file <file>', 'passed to each server: its CURVE key file (a path on the host)')
    .option('--authorized-keys <file>', 'passed to each server: controller public keys it accepts')
    .option('--controller-key <key>', 'passed to each server: the public key of the controller it dials')
    .option('--insecure', 'passed to each server: run without CURVE')
    .option('--server-arg <arg>', 'any further argument for `tsgather server` (repeatable)', collect, []);
  return addSlurmUpOptions(command).action(async (args: string[], flags: UpFlags & SlurmUpFlags, command: Command) => {
    if (flags.slurm) {
      if (args.length > 0 || flags.hostfile) return command.error('error: --slurm submits jobs to Slurm: give no hosts', { exitCode: EXIT.usage });
      const sshOnly = (['bind', 'authorizedKeys', 'insecure', 'logFile'] as const).filter((flag) => flags[flag] !== undefined);
      if (sshOnly.length > 0) {
        const names = sshOnly.map((flag) => `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ');
        return command.error(`error: ${names} ${sshOnly.length > 1 ? 'are' : 'is'} not for --slurm: its servers dial --connect with keys, and log to --log-dir`, { exitCode: EXIT.usage });
      }
      return slurmUp(flags, command);
    }
    const hosts = hostsOf(args, flags, command);
    const remote = `${flags.remoteCommand} ${serverArgs(flags).map(shellQuote).join(' ')}`;
    const outcomes = await Promise.all(hosts.map((host) => runOverSsh(host, remote, sshOptions(flags))));
    const urls: string[] = [];
    let failed = 0;
    outcomes.forEach((outcome, i) => {
      const host = hosts[i]!;
      if (outcome.code !== 0) {
        failed++;
        process.stderr.write(`${host.spec}: failed (ssh exit ${outcome.code}): ${(outcome.stderr + outcome.stdout).trim()}\n`);
        return;
      }
      const key = /^public key ([0-9a-f]{64})$/m.exec(outcome.stdout)?.[1];
      const endpoints = [...outcome.stdout.matchAll(/^listening on (\S+)$/gm)].map((m) => reachableUrl(m[1]!, host.host) + (key ? `?key=${key}` : ''));
      const pid = /pid (\d+)/.exec(outcome.stdout)?.[1];
      urls.push(...endpoints);
      process.stderr.write(`${host.spec}: server pid ${pid ?? '?'} ${endpoints.length ? `listening on ${endpoints.join(', ')}` : `dialling ${flags.connect}`}\n`);
    });
    for (const url of urls) process.stdout.write(`${url}\n`);
    if (urls.length > 0) process.stderr.write(`use: await spawnScatterGather(${JSON.stringify(urls)})\n`);
    if (failed > 0) fail(`${failed} of ${hosts.length} host(s) did not start a server`);
  });
}

function downCommand(): Command {
  return withCommonFlags(new Command('down').description('stop the server daemon on each host over ssh (tsgather server stop), or with --slurm drain and cancel the jobs'))
    .option('--slurm', "drain a Slurm cluster's servers (scancel --batch --signal=USR1), then cancel what is left")
    .option('--name <name>', 'with --slurm: the cluster', 'tsgather')
    .option('--state-dir <dir>', `with --slurm: where cluster folders are (default ${defaultStateDir()})`)
    .option('--drain-seconds <s>', "with --slurm: how long to wait for draining servers before cancelling them (default: the servers' 60 s)", wholeNumber)
    .action(async (args: string[], flags: CommonFlags & { slurm?: boolean; name: string; stateDir?: string; drainSeconds?: number }, command: Command) => {
      if (flags.slurm) {
        if (args.length > 0 || flags.hostfile) return command.error('error: --slurm stops Slurm jobs: give no hosts', { exitCode: EXIT.usage });
        return slurmDown(flags);
      }
      const hosts = hostsOf(args, flags, command);
      const remote = `${flags.remoteCommand} server stop --pidfile ${shellQuote(flags.pidfile)}`;
      const outcomes = await Promise.all(hosts.map((host) => runOverSsh(host, remote, sshOptions(flags))));
      let failed = 0;
      let notRunning = 0;
      outcomes.forEach((outcome, i) => {
        const said = (outcome.stdout + outcome.stderr).trim();
        if (outcome.code === 0) process.stderr.write(`${hosts[i]!.spec}: ${said}\n`);
        else if (outcome.code === EXIT.notRunning) {
          notRunning++;
          process.stderr.write(`${hosts[i]!.spec}: ${said}\n`);
        } else {
          failed++;
          process.stderr.write(`${hosts[i]!.spec}: failed (ssh exit ${outcome.code}): ${said}\n`);
        }
      });
      if (failed > 0) fail(`${failed} of ${hosts.length} host(s) could not be stopped`);
      else if (notRunning > 0) process.exitCode = EXIT.notRunning;
    });
}

export function clusterCommand(): Command {
  return new Command('cluster').description('start or stop compute servers on other machines, over ssh or as Slurm jobs').addCommand(upCommand()).addCommand(statusCommand()).addCommand(downCommand());
}
