/**
 * Podman for tests, kept to a temporary directory: its storage, state and settings live there, and
 * `remove()` deletes its containers, images and storage. No image registry is reachable, so images
 * are made here: a Debian base with mmdebstrap from this machine's apt sources, and a Node image
 * from the Node running the tests (Debian's own nodejs is too old).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runProgram, type CliOutcome } from './cli-helpers.js';

export class Podman {
  private constructor(
    readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** A podman of its own in a new temporary directory; fails clearly where podman or mmdebstrap is missing. */
  static async create(): Promise<Podman> {
    for (const [program, args] of [
      ['podman', ['--version']],
      ['mmdebstrap', ['--version']],
    ] as const) {
      await runProgram(program, [...args]).catch((error: Error) => {
        throw new Error(`${program} could not be run (test/setup.sh installs the Debian packages podman, runc and mmdebstrap): ${error.message}`);
      });
    }
    const dir = await mkdtemp(join(tmpdir(), 'tsgather-podman-'));
    const { nofile, nproc } = containerLimits();
    // runc, not crun; no systemd here (cgroupfs, events in a file); limits a container may have here
    // (see containerLimits); state and locks in this directory, not /run/libpod and /dev/shm.
    const conf = [
      '[containers]',
      `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`,
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${dir}/events.log"`,
      `tmp_dir = "${dir}/tmp"`,
      'lock_type = "file"',
      '',
    ].join('\n');
    const storage = ['[storage]', 'driver = "overlay"', `graphroot = "${dir}/storage"`, `runroot = "${dir}/run"`, ''].join('\n');
    await writeFile(join(dir, 'containers.conf'), conf);
    await writeFile(join(dir, 'storage.conf'), storage);
    return new Podman(dir, { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf') });
  }

  /** `podman ...args` with this storage; rejects with podman's stderr unless it exits 0 (or `allowFail`). */
  async run(args: string[], { allowFail = false } = {}): Promise<CliOutcome> {
    const global = ['--root', join(this.dir, 'storage'), '--runroot', join(this.dir, 'run'), '--tmpdir', join(this.dir, 'tmp')];
    const outcome = await runProgram('podman', [...global, ...args], { env: this.env });
    if (outcome.code !== 0 && !allowFail) throw new Error(`podman ${args.join(' ')} exited with ${outcome.code}: ${outcome.stderr.trim()}`);
    return outcome;
  }

  /**
   * A minimal Debian of this machine's release (what debian:<release>-slim holds: `--variant=minbase`
   * without documentation), from its configured apt sources, imported as `tag`.
   */
  async importDebianBase(tag: string): Promise<void> {
    const release = /^VERSION_CODENAME=(\w+)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    if (!release) throw new Error('/etc/os-release names no VERSION_CODENAME: the base image is made with mmdebstrap from a Debian machine');
    const tar = join(this.dir, 'base.tar');
    const excluded = ['doc', 'man', 'info', 'locale'].flatMap((folder) => ['--dpkgopt', `path-exclude=/usr/share/${folder}/*`]);
    const made = await runProgram('mmdebstrap', ['--variant=minbase', '--quiet', ...excluded, release, tar, ...aptSources()]);
    if (made.code !== 0) throw new Error(`mmdebstrap exited with ${made.code}: ${made.stderr.trim()}`);
    await this.run(['import', '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '--change', 'CMD ["bash"]', tar, tag]);
    await rm(tar);
  }

  /** The Node running this process and its npm, laid out as in the official Node images (/usr/local/bin/node, /usr/local/lib/node_modules/npm). */
  async importNode(tag: string): Promise<void> {
    const prefix = dirname(dirname(process.execPath));
    const npm = join('lib', 'node_modules', 'npm');
    if (!existsSync(join(prefix, npm, 'bin', 'npm-cli.js'))) throw new Error(`no npm next to ${process.execPath} (looked in ${join(prefix, npm)})`);
    const tar = join(this.dir, 'node.tar');
    const bin = join('bin', 'node');
    if (join(prefix, bin) !== process.execPath) throw new Error(`${process.execPath} is not <prefix>/bin/node`);
    const packed = await runProgram('tar', ['-C', prefix, '-cf', tar, '--transform', 's,^,usr/local/,', bin, npm]);
    if (packed.code !== 0) throw new Error(`tar exited with ${packed.code}: ${packed.stderr.trim()}`);
    await this.run(['import', tar, tag]);
    await rm(tar);
  }

  /**
   * `podman build` of `containerfile` in `context`. The build reaches the npm registry as this
   * machine does: its registry and CA (a proxy's, say) go in through a mounted npmrc, and its npm
   * cache is mounted as an overlay (read from, never written to) so that `npm ci` downloads little.
   */
  async build(context: string, containerfile: string, tag: string, buildArgs: Record<string, string>): Promise<void> {
    const npmrc: string[] = [];
    const mounts: string[] = [];
    const registry = (await npmConfig('registry', this.dir)) ?? 'https://registry.npmjs.org/';
    npmrc.push(`registry=${registry}`);
    const ca = process.env.NODE_EXTRA_CA_CERTS ?? (await npmConfig('cafile', this.dir));
    if (ca && existsSync(ca)) {
      mounts.push('--volume', `${ca}:/run/tsgather-build/ca.crt:ro`);
      npmrc.push('cafile=/run/tsgather-build/ca.crt');
    }
    await writeFile(join(this.dir, 'npmrc'), `${npmrc.join('\n')}\n`);
    mounts.push('--volume', `${join(this.dir, 'npmrc')}:/root/.npmrc:ro`);
    const cache = await npmConfig('cache', this.dir);
    if (cache && existsSync(cache)) mounts.push('--volume', `${cache}:/root/.npm:O`);
    const args = Object.entries(buildArgs).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]);
    // No layer cache (a fresh storage has nothing to reuse), host networking (no network plugins needed).
    await this.run(['build', '--pull=never', '--layers=false', '--network', 'host', ...mounts, ...args, '-f', containerfile, '-t', tag, context]);
  }

  /**
   * Removes this podman's containers (stopping them), images and files. Not `podman system reset`:
   * it would also remove the machine's podman networks, which are not in this directory.
   */
  async remove(): Promise<void> {
    await this.run(['rm', '--all', '--force', '--time', '0'], { allowFail: true });
    await this.run(['rmi', '--all', '--force'], { allowFail: true });
    // Whatever is still mounted in the directory (a build cut short) is unmounted, so that rm never goes into a mount.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4])
      .filter((point): point is string => point?.startsWith(`${this.dir}/`) === true)
      .sort((a, b) => b.length - a.length);
    for (const point of mounts) await runProgram('umount', ['--lazy', point]);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The rlimits a container can be given here: no higher than this process's hard limits (without
 * CAP_SYS_RESOURCE they cannot be raised, and podman's defaults ask for more), and at most 32768
 * processes, to which podman lowers its own limit when it starts.
 */
function containerLimits(): { nofile: number; nproc: number } {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const hard = (name: string, cap: number) => {
    const value = new RegExp(`^${name}\\s+\\S+\\s+(\\S+)`, 'm').exec(limits)?.[1];
    return value === undefined || value === 'unlimited' ? cap : Math.min(Number(value), cap);
  };
  return { nofile: hard('Max open files', 65536), nproc: hard('Max processes', 32768) };
}

/** This machine's apt source files (one-line and deb822), as mmdebstrap takes them. */
function aptSources(): string[] {
  const files = existsSync('/etc/apt/sources.list') && /^\s*deb\s/m.test(readFileSync('/etc/apt/sources.list', 'utf8')) ? ['/etc/apt/sources.list'] : [];
  const folder = '/etc/apt/sources.list.d';
  if (existsSync(folder))
    files.push(
      ...readdirSync(folder)
        .filter((name) => /\.(list|sources)$/.test(name))
        .map((name) => join(folder, name)),
    );
  if (files.length === 0) throw new Error('no apt sources configured in /etc/apt/sources.list or /etc/apt/sources.list.d');
  return files;
}

/** `npm config get <key>`, or undefined when unset. */
async function npmConfig(key: string, logsDir: string): Promise<string | undefined> {
  // npm's debug log goes to the temporary directory, not ~/.npm/_logs (where each run would also prune another's).
  const got = await runProgram('npm', ['config', 'get', key, `--logs-dir=${logsDir}`]);
  const value = got.stdout.trim();
  return got.code === 0 && value !== '' && value !== 'null' && value !== 'undefined' ? value : undefined;
}
