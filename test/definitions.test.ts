/**
 * Definitions that take what they use with them (docs/definitions.md): names given with `with`
 * (helpers, recursively, and data), imports resolved from the caller's directory, errors at define
 * for names that cannot travel, and on a remote-style server — its own working directory, the
 * caller's directory hidden from it by a mount namespace — packages from the server's own
 * node_modules, a clear error naming the server for what it lacks, and local modules shipped with
 * sg.sync(), a new version on every change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CaptureError, imported, spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { cli, listeningEndpoint, waitUntil } from './helpers.js';

// Names the defined functions below use, given to them with `with`: declared for the type checker only.
declare function helper(x: number): number;
declare function shout(s: string): string;

const root = mkdtempSync(path.join(tmpdir(), 'tsgather-definitions-'));
/** The caller's directory (as a notebook's or script's): a local module, a CommonJS one, a package of its project. */
const home = path.join(root, 'home');
/** The remote-style server's working directory: a package of its own project. */
const serverDir = path.join(root, 'server');

function write(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

function makePackage(dir: string, name: string, source: string): void {
  write(path.join(dir, 'node_modules', name, 'package.json'), JSON.stringify({ name, type: 'module', exports: './index.js' }));
  write(path.join(dir, 'node_modules', name, 'index.js'), source);
}

write(path.join(home, 'mylib.mjs'), "import { offset } from './lib/dep.mjs';\nexport const triple = (x) => x * 3 + offset;\n");
write(path.join(home, 'lib', 'dep.mjs'), 'export const offset = 0;\n');
write(path.join(home, 'counter.cjs'), 'module.exports = { bump: (x) => x + 1 };\n');
write(path.join(home, 'uses-server-package.mjs'), "import where from 'onlyonserver';\nexport const tag = () => `synced+${where}`;\n");
makePackage(home, 'homepkg', "export default function shout(s) { return s.toUpperCase() + '!'; }\n");
makePackage(serverDir, 'onlyonserver', "export default 'server package';\n");

after(() => rmSync(root, { recursive: true, force: true }));

describe('define with captured names, on the embedded server', { timeout: 120_000 }, () => {
  let sg: ScatterGather;

  before(async () => {
    sg = await spawnScatterGather([], { workers: 2, progress: false, base: home });
  });

  after(async () => {
    await sg?.close();
  });

  test('helpers (and what they use in turn) and constants travel by value', async () => {
    const SCALE = 3;
    const weights = new Map([['a', 2]]);
    const since = new Date('2020-01-01T00:00:00Z');
    const table = new Float64Array([0.5, 1.5]);
    function helper(x: number): number {
      return x * SCALE;
    }
    const twice = (x: number) => helper(helper(x));
    const fn = (x: number) => ({ value: twice(x) + (weights.get('a') ?? 0) + table[1]!, year: since.getUTCFullYear() });
    await sg.define('twice', fn, { with: { twice, helper, SCALE, weights, since, table } });
    assert.deepEqual(await sg.map('twice', [[[1]], [[2]]]), [
      { value: 9 + 2 + 1.5, year: 2020 },
      { value: 18 + 2 + 1.5, year: 2020 },
    ]);
    // a name used only under typeof is one the function checks for: not required
    await sg.define('guarded', "() => typeof window === 'undefined' ? 'no window' : window");
    assert.equal(await sg.submit('guarded'), 'no window');
  });

  test('a free name neither global nor given is refused at define, naming it and its line', async () => {
    const defined = sg.define('broken', 'async (x) => {\n  const y = x + 1;\n  return notDefinedAnywhere(y);\n}');
    await assert.rejects(defined, (error: Error) => {
      assert.ok(error instanceof CaptureError);
      assert.match(error.message, /'notDefinedAnywhere' \(used at line 3 of broken: "return notDefinedAnywhere\(y\);"\) is not defined here/);
      assert.match(error.message, /\{ with: \{ notDefinedAnywhere \} \}/);
      return true;
    });
  });

  test('a socket, or a helper that uses one, is refused at define with its name and line', async () => {
    const socket = new net.Socket();
    const send = (x: string) => socket.write(x);
    await assert.rejects(
      sg.define('sender', (x: string) => send(x), { with: { send, socket } }),
      (error: Error) => {
        assert.ok(error instanceof CaptureError);
        assert.match(error.message, /^define\('sender'\): 'socket' \(used at line 1 of 'send': "\(x\) => socket.write\(x\)"\) cannot travel to the workers: it is a Socket/);
        return true;
      },
    );
    const handle = { name: 'db', conn: socket };
    await assert.rejects(
      sg.define('holder', () => handle.name, { with: { handle } }),
      /'handle' .* cannot travel to the workers: its part \.conn is a Socket/,
    );
  });

  test('import() and require() resolve from the caller directory; imported() binds a name to a module', async () => {
    await sg.define('local', async (x: number) => {
      const { triple } = await import('./mylib.mjs' as string);
      const { default: shout } = await import('homepkg' as string);
      return `${shout(String(triple(x)))} ${require('./counter.cjs').bump(x)} ${require.resolve('./counter.cjs')}`;
    });
    assert.equal(await sg.submit('local', [2]), `6! 3 ${path.join(home, 'counter.cjs')}`);
    await sg.define('bound', (s: string) => shout(s), { with: { shout: imported('homepkg', 'default') } });
    assert.equal(await sg.submit('bound', ['hey']), 'HEY!');
  });

  test('a missing package is an error naming it and the server', async () => {
    await sg.define('missing', async () => (await import('no-such-package-anywhere' as string)).default);
    const result = (await sg.mapResults('missing', [[[]]]))[0]!;
    assert.equal(result.ok, false);
    assert.equal(result.error?.name, 'ModuleNotFoundError');
    assert.match(result.error!.message, new RegExp(`cannot import 'no-such-package-anywhere' on server '${result.worker.server}' \\(host ${result.worker.host}\\)`));
  });

  test('redefining with a new helper gives a new version and new results', async () => {
    const first = (x: number) => x + 1;
    const second = (x: number) => x + 1000;
    assert.equal(await sg.define('step', (x: number) => helper(x), { with: { helper: first } }), 1);
    assert.equal(await sg.submit('step', [1]), 2);
    assert.equal(await sg.define('step', (x: number) => helper(x), { with: { helper: second } }), 2);
    const [result] = await sg.mapResults('step', [[[1]]]);
    assert.deepEqual([result!.value, result!.version], [1001, 2]);
  });
});

/** `tsgather server` in its own directory, in a mount namespace where the caller's directory is an empty tmpfs: as on another machine. */
async function startRemoteStyleServer(name: string, ...extra: string[]): Promise<{ proc: ChildProcess; endpoint: string; stop: () => Promise<void> }> {
  const script = `mount -t tmpfs tsgather-hidden "$1" && shift && exec "$@"`;
  const command = [process.execPath, cli, 'server', '--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--name', name, ...extra];
  const proc = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', home, ...command], { cwd: serverDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr!.setEncoding('utf8').on('data', (text: string) => (log += text));
  const endpoint = await listeningEndpoint(proc, (code) => `the remote-style server exited with ${code} (it needs root for its mount namespace): ${log}`);
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = once(proc, 'exit');
    proc.kill('SIGTERM');
    await gone;
  };
  return { proc, endpoint, stop };
}

describe('imports on a remote-style server', { timeout: 120_000 }, () => {
  let server: Awaited<ReturnType<typeof startRemoteStyleServer>>;
  let late: Awaited<ReturnType<typeof startRemoteStyleServer>> | undefined;
  let sg: ScatterGather;

  before(async () => {
    server = await startRemoteStyleServer('remote-1');
    sg = await spawnScatterGather([server.endpoint], { progress: false, base: home });
  });

  after(async () => {
    await sg?.close();
    await server?.stop();
    await late?.stop();
  });

  const failure = async (fn: string) => {
    const [result] = await sg.mapResults(fn, [[[]]]);
    assert.equal(result!.ok, false, `${fn} should fail here`);
    return result!.error!;
  };

  test("packages resolve against the server's own; what it lacks is an error naming the server", async () => {
    await sg.define('serverPackage', async () => (await import('onlyonserver' as string)).default);
    assert.equal(await sg.submit('serverPackage'), 'server package');

    await sg.define('homePackage', async () => (await import('homepkg' as string)).default('x'));
    const missing = await failure('homePackage');
    assert.equal(missing.name, 'ModuleNotFoundError');
    assert.match(missing.message, /^cannot import 'homepkg' on server 'remote-1' \(host [^)]+\): not found from .* \(the caller's directory\) and .* \(the server's directory\); install it there/);

    await sg.define('localModule', async (x: number) => (await import('./mylib.mjs' as string)).triple(x));
    const local = await failure('localModule');
    assert.match(local.message, /^cannot import '\.\/mylib\.mjs' on server 'remote-1' .*ship it with sg\.sync\(\['\.\/mylib\.mjs'\]\)/);
  });

  test('sync() ships local modules, with versions: a changed file reaches the workers as a new version', async () => {
    const synced = await sg.sync(['./mylib.mjs', 'lib', 'uses-server-package.mjs']);
    assert.deepEqual(
      synced.map((m) => m.path),
      ['lib/dep.mjs', 'mylib.mjs', 'uses-server-package.mjs'],
    );
    assert.equal(await sg.submit('localModule', [2]), 6);
    // a shipped module's own packages resolve from the server's
    await sg.define('shippedUsesServer', async () => (await import('./uses-server-package.mjs' as string)).tag());
    assert.equal(await sg.submit('shippedUsesServer'), 'synced+server package');

    write(path.join(home, 'lib', 'dep.mjs'), 'export const offset = 100;\n');
    const [again] = await sg.sync(['lib/dep.mjs']);
    assert.notEqual(again!.hash, synced[0]!.hash);
    const [result] = await sg.mapResults('localModule', [[[2]]]);
    assert.equal(result!.value, 106);
    assert.equal(result!.version, 3, 'defined, then shipped again by each sync');
  });

  test('after a refresh, and on a server that joins late, definitions come with their captures and modules', async () => {
    const OFFSET = 1000;
    await sg.define('withEverything', async (x: number) => (await import('./mylib.mjs' as string)).triple(x) + OFFSET, { with: { OFFSET } });
    await sg.command('refresh');
    assert.equal(await sg.submit('withEverything', [2]), 1106);
    late = await startRemoteStyleServer('remote-late', '--label', 'late');
    await sg.connect(late.endpoint);
    const [result] = await sg.mapResults('withEverything', [[[3]]], { labels: ['late'] });
    assert.deepEqual([result!.value, result!.worker.server], [1109, 'remote-late']);
  });

  test("a session's shipped modules go when it ends", async () => {
    const cache = path.join(serverDir, 'node_modules', '.cache', 'tsgather', 'modules');
    assert.equal(readdirSync(cache).length, 1, 'one session directory while the session runs');
    await sg.close();
    await waitUntil(() => !existsSync(cache) || readdirSync(cache).length === 0, 10_000, 'the session directory to go');
  });
});
