/** The `tsgather` command line, each command really run: help, exit codes, daemon, logs, run, kernel, bench. */
import assert from 'node:assert/strict';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readPid } from '../cli/pidfile.js';
import { spawnScatterGather } from '../caller/index.js';
import { YOUNG_GENERATION_FLAGS } from '../runtime/v8-flags.js';
import { runCli, runProgram } from './cli-helpers.js';
import { alive, codeNotebook, descendantsRunning, logMatches, nextEvent, startServer, stopDaemonsIn, waitUntil } from './helpers.js';

let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), 'tsgather-cli-'))));
after(async () => {
  await stopDaemonsIn(dir);
  await rm(dir, { recursive: true, force: true });
});

describe('help and usage errors', () => {
  const commands = [
    [],
    ['server'],
    ['server', 'stop'],
    ['server', 'status'],
    ['run'],
    ['kernel'],
    ['kernel', 'install'],
    ['kernel', 'uninstall'],
    ['keys'],
    ['bench'],
    ['cluster'],
    ['cluster', 'up'],
    ['cluster', 'down'],
  ];
  test('--help works on every command and exits 0', async () => {
    const outcomes = await Promise.all(commands.map((path) => runCli([...path, '--help'])));
    outcomes.forEach((outcome, i) => {
      assert.equal(outcome.code, 0, `${commands[i]!.join(' ')} --help: ${outcome.stderr}`);
      assert.match(outcome.stdout, new RegExp(`^Usage: tsgather ${commands[i]!.join(' ')}`.trimEnd()));
    });
  });

  const bad: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['server'], /give --bind and\/or --connect/],
    [['server', '--bind', 'tcp://127.0.0.1:0', '--workers', '0'], /'--workers <n>' argument '0' is invalid. must be a positive whole number/],
    [['server', '--bind', 'tcp://127.0.0.1:0', '--log-level', 'loud'], /must be one of fatal, error, warn, info/],
    [['server', '--bind', 'tcp://127.0.0.1:0', '--spare-workers', '-1'], /'--spare-workers <n>' argument '-1' is invalid. must be a whole number \(0 or more\)/],
    [['server', '--no-such-flag'], /unknown option '--no-such-flag'/],
    [['run'], /missing required argument 'notebook'/],
    [['run', '/nonexistent/x.ipynb'], /cannot read \/nonexistent\/x.ipynb: ENOENT/],
    [['run', 'x.ipynb', '--timeout', '-1'], /must be a positive number of seconds/],
    [['cluster', 'up'], /no hosts: give them as arguments or with --hostfile/],
    [['cluster', 'down', 'not a host'], /'not a host' is not a host: expected \[user@\]host\[:port\]/],
    [['cluster', 'up', 'h1', '--hostfile', '/nonexistent/hosts'], /cannot read --hostfile/],
  ];
  test('bad arguments exit 2 with a clear message and a pointer to --help, doing nothing', async () => {
    const outcomes = await Promise.all(bad.map(([args]) => runCli(args)));
    outcomes.forEach((outcome, i) => {
      const [args, message] = bad[i]!;
      assert.equal(outcome.code, 2, `${args.join(' ')}: ${outcome.stderr}`);
      assert.match(outcome.stderr, message);
      assert.match(outcome.stderr, /add --help for usage/);
      assert.equal(outcome.stdout, '');
    });
  });
});

describe('server daemon, status and stop with a pid file', { timeout: 120_000 }, () => {
  test('start detaches, status says running, a second start is refused, stop waits until it is gone', async () => {
    const pidfile = join(dir, 'daemon.pid');
    assert.equal((await runCli(['server', 'status', '--pidfile', pidfile])).code, 3);

    const started = await runCli(['server', '--daemon', '--pidfile', pidfile, '--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '2', '--log-level', 'info']);
    assert.equal(started.code, 0, started.stderr);
    const endpoint = /^listening on (tcp:\/\/127\.0\.0\.1:\d+)$/m.exec(started.stdout)?.[1];
    assert.ok(endpoint, started.stdout);
    const pid = readPid(pidfile)!;
    assert.match(started.stdout, new RegExp(`started server pid ${pid} \\(pid file ${pidfile}, log ${join(dir, 'daemon.log')}\\)`));
    assert.ok(alive(pid));
    const daemonArgs = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(
      YOUNG_GENERATION_FLAGS.every((flag) => daemonArgs.includes(flag)),
      `the daemon relays every message, and gets the engine's young generation: ${daemonArgs.join(' ')}`,
    );

    const status = await runCli(['server', 'status', '--pidfile', pidfile]);
    assert.equal(status.code, 0);
    assert.equal(status.stdout, `running: pid ${pid} (pid file ${pidfile})\nserver ${os.hostname()}-${pid}: 1 worker(s)\nsessions: 0\n`);

    const second = await runCli(['server', '--daemon', '--pidfile', pidfile, '--bind', 'tcp://127.0.0.1:0', '--workers', '1']);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`already running with pid ${pid}`));
    assert.equal(readPid(pidfile), pid, 'the pid file still names the first server');

    const workerProcesses = () => descendantsRunning('server/worker.js', pid);
    // The daemon serves: a controller runs jobs on it.
    const sg = await spawnScatterGather([endpoint], { echo: false });
    try {
      await sg.define('twice', (x: number) => 2 * x);
      assert.deepEqual(await sg.map('twice', [[[1]], [[2]]]), [2, 4]);
      // One worker and, shortly after it came up, the two spares asked for.
      await waitUntil(() => workerProcesses().length === 3, 10_000, 'the worker and two spares');
    } finally {
      await sg.close(); // a die on a shared server ends this controller's session only
    }
    assert.equal(workerProcesses().length, 3, 'the server keeps its worker and spares for other controllers');

    const stopped = await runCli(['server', 'stop', '--pidfile', pidfile]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout, `stopped server pid ${pid}\n`);
    assert.equal(alive(pid), false, 'stop returns only once the server is gone');
    assert.deepEqual(workerProcesses(), [], 'its workers went with it');
    assert.equal(existsSync(pidfile), false, 'the server removed its pid file');
    const log = await readFile(join(dir, 'daemon.log'), 'utf8');
    assert.match(log, /"msg":"server ready"/);
    assert.match(log, /"why":"SIGTERM","msg":"stopping"/);

    const again = await runCli(['server', 'stop', '--pidfile', pidfile]);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /not running \(no pid in/);
    assert.equal((await runCli(['server', 'status', '--pidfile', pidfile])).code, 3);
  });

  test('a stale pid file (its process is gone) reads as not running and is taken over', async () => {
    const pidfile = join(dir, 'stale.pid');
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => gone.once('exit', resolve));
    await writeFile(pidfile, `${gone.pid}\n`);
    const status = await runCli(['server', 'status', '--pidfile', pidfile]);
    assert.equal(status.code, 3);
    assert.match(status.stdout, new RegExp(`stale pid ${gone.pid}`));

    const started = await runCli(['server', '--daemon', '--pidfile', pidfile, '--bind', 'tcp://127.0.0.1:0', '--workers', '1']);
    assert.equal(started.code, 0, started.stderr);
    const pid = readPid(pidfile)!;
    assert.notEqual(pid, gone.pid);
    assert.equal((await runCli(['server', 'stop', '--pidfile', pidfile])).code, 0);
    assert.equal(alive(pid), false);
  });

  test('a daemon that cannot start reports why and exits 1, leaving no pid file', async () => {
    const pidfile = join(dir, 'broken.pid');
    const started = await runCli(['server', '--daemon', '--pidfile', pidfile, '--bind', 'not-an-endpoint', '--workers', '1']);
    assert.equal(started.code, 1);
    assert.match(started.stderr, /server did not start/);
    assert.equal(readPid(pidfile), undefined);
  });

  test('a server whose workers cannot load its --module fails with the module error, in the foreground and as a daemon', async () => {
    const module = join(dir, 'broken-module.mjs');
    await writeFile(module, 'throw new Error("this module does not load")\n');
    const foreground = await runCli(['server', '--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--module', module, '--log-level', 'error']);
    assert.equal(foreground.code, 1);
    assert.match(foreground.stderr, /workers died \d+ times in a row before becoming ready[\s\S]*this module does not load/);
    const pidfile = join(dir, 'broken-module.pid');
    const daemon = await runCli(['server', '--daemon', '--pidfile', pidfile, '--log-file', join(dir, 'broken-module.log'), '--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--module', module]);
    assert.equal(daemon.code, 1);
    assert.match(daemon.stderr, /server did not start[\s\S]*this module does not load/);
    assert.equal(readPid(pidfile), undefined);
  });

  test('a --module whose function names cannot travel fails clearly, rather than its workers never being seen or a function never being callable', async () => {
    const many = join(dir, 'many-exports.mjs');
    await writeFile(many, Array.from({ length: 5000 }, (_, i) => `export const fn${String(i).padStart(6, '0')} = () => ${i};\n`).join(''));
    const tooMany = await runCli(['server', '--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--module', many, '--log-level', 'error']);
    assert.equal(tooMany.code, 1);
    assert.match(tooMany.stderr, /exports 5000 functions whose names take 55001 bytes; at most 32768 fit in the messages that announce a worker/);
    const long = join(dir, 'long-name.mjs');
    await writeFile(long, `export const short = () => 1;\nexport const f${'x'.repeat(300)} = () => 2;\n`);
    const tooLong = await runCli(['server', '--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--module', long, '--log-level', 'error']);
    assert.equal(tooLong.code, 1);
    assert.match(tooLong.stderr, /exports a function named 'fxxx+…' \(301 characters\); a function name is at most 256/);
  });
});

/** Log lines below pino's warn level (40). */
const belowWarn = (stderr: string) =>
  stderr
    .split('\n')
    .filter(Boolean)
    .filter((line) => (JSON.parse(line) as { level: number }).level < 40);

describe('server logs', { timeout: 120_000 }, () => {
  test('JSON lines for the connection, refresh and a worker death; TSGATHER_LOG_LEVEL sets the level', async () => {
    const server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '2', '--log-level', 'info']);
    const sg = await spawnScatterGather([server.endpoint], { echo: false });
    try {
      const lines = () =>
        server.log
          .join('')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { msg: string; level: number; role: string });
      await sg.command('refresh');
      const status = await sg.status();
      const victim = (status.servers[0] as { workers: Array<{ pid: number }> }).workers[0]!.pid;
      const down = nextEvent(sg, 'worker-down', (d) => d.pid === victim);
      process.kill(victim, 'SIGKILL');
      await down;
      await sg.close();
      await server.stop();
      const messages = lines().map((line) => line.msg);
      for (const expected of ['server ready', 'controller connected', 'controller greeted', 'workers refreshed', 'worker died', 'stopping']) {
        assert.ok(messages.includes(expected), `'${expected}' in ${JSON.stringify(messages)}`);
      }
      const death = lines().find((line) => line.msg === 'worker died') as unknown as { pid: number; signal: string; level: number };
      assert.equal(death.pid, victim);
      assert.equal(death.signal, 'SIGKILL');
      assert.equal(death.level, 40, 'a worker death is a warning');
      assert.ok(lines().every((line) => line.role === 'server'));
    } finally {
      await sg.close();
      await server.stop();
    }

    const quiet = spawn(process.execPath, [join(import.meta.dirname, '../cli/main.js'), 'server', '--bind', 'tcp://127.0.0.1:0', '--workers', '1'], {
      env: { ...process.env, TSGATHER_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    quiet.stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
    await new Promise<void>((resolve) => quiet.stdout.setEncoding('utf8').on('data', (text: string) => text.includes('listening on') && resolve()));
    quiet.kill('SIGTERM');
    await new Promise((resolve) => quiet.once('exit', resolve));
    assert.deepEqual(belowWarn(err), [], 'no info lines at level warn');
  });

  test('a dialling server logs its connection to the controller and the goodbye', async () => {
    const sg = await spawnScatterGather([], { embedded: false, listen: 'tcp://127.0.0.1:0', echo: false });
    const up = nextEvent(sg, 'worker-up');
    const server = await startServer(['--connect', sg.listenAddress!, '--workers', '1', '--log-level', 'info'], { waitForEndpoint: false });
    try {
      await up;
      await sg.close();
      await logMatches(server, /"msg":"controller said goodbye"/);
      assert.match(server.log.join(''), /"url":"tcp:\/\/127\.0\.0\.1:\d+","msg":"connected to controller"/);
    } finally {
      await sg.close();
      await server.stop();
    }
  });

  test('the controller logs pino JSON lines at the logLevel option (default warn: quiet)', async () => {
    const index = join(import.meta.dirname, '../caller/index.js');
    const script = (options: string) => `import { spawnScatterGather } from ${JSON.stringify(index)};\nconst sg = await spawnScatterGather([], { workers: 1, ${options} });\nawait sg.close();\n`;
    await writeFile(join(dir, 'verbose.mjs'), script("logLevel: 'info'"));
    await writeFile(join(dir, 'quiet.mjs'), script(''));
    const env = { ...process.env };
    delete env.TSGATHER_LOG_LEVEL;
    const verbose = await runProgram(process.execPath, [join(dir, 'verbose.mjs')], { env });
    assert.equal(verbose.code, 0, verbose.stderr);
    const lines = verbose.stderr
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { role: string; msg: string; level: number });
    assert.ok(
      lines.some((line) => line.role === 'controller' && line.msg === 'server joined' && line.level === 30),
      verbose.stderr,
    );
    assert.ok(
      lines.some((line) => line.role === 'server' && line.msg === 'server ready'),
      'the embedded server logs at the same level',
    );
    const quiet = await runProgram(process.execPath, [join(dir, 'quiet.mjs')], { env });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.deepEqual(belowWarn(quiet.stderr), [], 'nothing below warn (a loaded machine may legitimately warn)');
  });

  test('a secret key never appears in the logs, even at trace level', async () => {
    const keys = await runCli(['keys', 'generate', '--out', join(dir, 'keys'), '--name', 'server']);
    assert.equal(keys.code, 0, keys.stderr);
    const secret = /^secret (\S+)$/m.exec(await readFile(join(dir, 'keys', 'server.key'), 'utf8'))?.[1];
    assert.ok(secret, 'the key file holds a secret line');
    const server = await startServer([
      '--bind',
      'tcp://127.0.0.1:0',
      '--workers',
      '1',
      '--key-file',
      join(dir, 'keys', 'server.key'),
      '--authorized-keys',
      join(dir, 'keys', 'server.pub'),
      '--log-level',
      'trace',
    ]);
    await server.stop();
    const log = server.log.join('');
    assert.match(log, /server ready/);
    assert.ok(!log.includes(secret), 'secret key logged');
  });
});

describe('run, kernel and bench', { timeout: 120_000 }, () => {
  test('run NOTEBOOK executes a tiny notebook (exit 0) and a failing one (exit 1)', async () => {
    const notebook = (...sources: string[]) => JSON.stringify(codeNotebook(...sources));
    await writeFile(join(dir, 'tiny.ipynb'), notebook('6 * 7'));
    const ok = await runCli(['run', join(dir, 'tiny.ipynb')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^1 code cells in [\d.]+ s: ok\nexecuted notebook: .*tiny\.out\.ipynb\n$/);
    const executed = JSON.parse(await readFile(join(dir, 'tiny.out.ipynb'), 'utf8'));
    assert.equal(executed.cells[0].outputs[0].data['text/plain'], '42');

    await writeFile(join(dir, 'fails.ipynb'), notebook('throw new TypeError("nope")', '1'));
    const failed = await runCli(['run', join(dir, 'fails.ipynb'), '-o', join(dir, 'fails-run.ipynb')]);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /1 cell\(s\) failed/);
    assert.match(failed.stderr, /TypeError: nope/);
    assert.ok(existsSync(join(dir, 'fails-run.ipynb')));
  });

  test('kernel install and uninstall into a prefix', async () => {
    const prefix = join(dir, 'venv');
    const installed = await runCli(['kernel', 'install', '--prefix', prefix]);
    assert.equal(installed.code, 0, installed.stderr);
    const specDir = join(prefix, 'share', 'jupyter', 'kernels', 'tsgather');
    assert.equal(installed.stdout, `installed kernelspec in ${specDir}\n`);
    assert.equal(JSON.parse(await readFile(join(specDir, 'kernel.json'), 'utf8')).language, 'typescript');
    const removed = await runCli(['kernel', 'uninstall', '--prefix', prefix]);
    assert.equal(removed.code, 0);
    assert.equal(existsSync(specDir), false);
    const again = await runCli(['kernel', 'uninstall', '--prefix', prefix]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no kernelspec at/);
  });

  test('bench passes its arguments through and returns the bench exit code', async () => {
    const help = await runCli(['bench', '--', '--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout + help.stderr, /--quick/);
    const bad = await runCli(['bench', '--only', 'nothing']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--only: unknown section\(s\) nothing/);
  });
});
