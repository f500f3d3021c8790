/**
 * Who may start, attach to and end a named session: one caller at a time, a process gets its own
 * ScatterGather back, options fixed at the start are ignored with a warning, `tsgather sessions`
 * lists and ends them, and the session's folders are private to their user (another uid can
 * neither find nor reach them).
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnScatterGather, SessionDetachedError, SessionNotFoundError, type ScatterGather } from '../caller/index.js';
import { isAlive } from '../kernel/process-tree.js';
import { readSessionState } from '../protocol/session-dir.js';
import { runCli } from './cli-helpers.js';
import { allGone, endSessionsIn, GATED, sessionProcesses, startScript, useSessionsDir } from './session-helpers.js';

let dir: string;
before(() => (dir = useSessionsDir()));
after(() => endSessionsIn(dir));

const SMALL = { workers: 1, spareWorkers: 0 };

describe('starting and attaching', { timeout: 120_000 }, () => {
  test('attachOnly with no such session: SessionNotFoundError, and nothing is made', async () => {
    await assert.rejects(spawnScatterGather({ session: 'nowhere', attachOnly: true }), SessionNotFoundError);
    assert.equal(existsSync(join(dir, 'nowhere')), false);
  });

  test('bad session options are refused before anything starts', async () => {
    await assert.rejects(spawnScatterGather({ session: 'a b' }), { name: 'TypeError', message: /session must be a name/ });
    await assert.rejects(spawnScatterGather({ attachOnly: true }), { name: 'TypeError', message: /attachOnly is for named sessions/ });
    await assert.rejects(spawnScatterGather({ session: 'x', sessionIdleMs: 0 }), { name: 'TypeError', message: /sessionIdleMs must be/ });
    await assert.rejects(spawnScatterGather({ session: 'x', sessionIdleMs: 30 * 86_400_000 }), { name: 'TypeError', message: /sessionIdleMs must be .* at most 2147483647/ });
    await assert.rejects(spawnScatterGather('tcp://x:1' as unknown as string[]), { name: 'TypeError', message: /list of server URLs/ });
  });

  test('one caller at a time; a process gets its own pool back; fixed options are ignored with a warning; the CLI lists and ends it', async () => {
    const sg = await spawnScatterGather({ session: 'here', ...SMALL });
    let detached = false;
    try {
      assert.equal(sg.session?.attached, false, 'started, not attached');
      assert.equal(await spawnScatterGather({ session: 'here' }), sg, 'this process is attached already');
      await sg.define('gated', GATED);
      assert.equal(await sg.submit('gated', ['/', 4]), 8);

      const other = startScript(`
        try { await m.spawnScatterGather({ session: 'here' }); console.log('ATTACHED'); }
        catch (error) { console.log('REFUSED ' + JSON.stringify([error.name, error.pid])); }
      `);
      assert.deepEqual(await other.line(/REFUSED (\[.*\])/), ['SessionInUseError', process.pid]);

      const listed = await runCli(['sessions']);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, new RegExp(`^here\\s+${sg.session!.pid}\\s+attached \\(pid ${process.pid}\\)`, 'm'));

      assert.deepEqual(await sg.detach(), { running: 0, held: 0 });
      detached = true;
      assert.throws(() => sg.addJob('gated', [[['/', 1]]]), SessionDetachedError);
      await assert.rejects(sg.status(), SessionDetachedError);
      await sg.close(); // detached: nothing to close here, and the session runs on

      const next = startScript(`
        const sg = await m.spawnScatterGather({ session: 'here', workers: 3 });
        console.log('INFO ' + JSON.stringify({ attached: sg.session.attached, ignored: sg.session.ignoredOptions }));
        console.log('VALUE ' + await sg.submit('gated', ['/', 5]));
        await sg.detach();
      `);
      assert.deepEqual(await next.line(/INFO (\{.*\})/), { attached: true, ignored: ['workers'] });
      assert.equal(await next.line(/VALUE (\d+)/), 10);
      const finished = await next.done;
      assert.equal(finished.code, 0);
      assert.match(finished.stderr, /session 'here' is running: workers is fixed when a session starts, and ignored here/);

      const json = await runCli(['sessions', 'list', '--json']);
      const [entry] = JSON.parse(json.stdout) as Array<{ name: string; alive: boolean; attachedPid?: number; pid: number }>;
      assert.deepEqual([entry?.name, entry?.alive, entry?.attachedPid], ['here', true, undefined], 'detached');

      const processes = sessionProcesses(sg.session!.pid);
      const ended = await runCli(['sessions', 'end', 'here']);
      assert.equal(ended.code, 0, ended.stderr);
      assert.match(ended.stdout, /ended session 'here'/);
      await allGone(processes, 'the ended session and its worker');
      assert.equal(existsSync(join(dir, 'here')), false);
      assert.equal((await runCli(['sessions', 'end', 'here'])).code, 3, 'no such session: exit 3');
    } finally {
      if (!detached) await sg.close();
    }
  });

  test('a session that cannot start says why, with its log, and leaves nothing behind', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      await assert.rejects(spawnScatterGather({ session: 'fails', embedded: false, listen: `tcp://127.0.0.1:${port}`, connectTimeoutMs: 10_000 }), (error: Error) => {
        assert.match(error.message, /the controller could not start: .*(in use|EADDRINUSE)/i);
        assert.match(error.message, /its log ended:\n.*controller could not start/s);
        return true;
      });
      assert.equal(existsSync(join(dir, 'fails')), false);
    } finally {
      taken.close();
    }
  });

  test("a session's controller killed outright: the attached caller's waits reject with ControllerExitedError", async () => {
    const sg = await spawnScatterGather({ session: 'crash', ...SMALL });
    await sg.define('gated', GATED);
    const waiting = sg.submit('gated', [join(dir, 'never'), 1]);
    const exited = new Promise((resolve) => sg.once('exit', resolve));
    const processes = sessionProcesses(sg.session!.pid);
    process.kill(sg.session!.pid, 'SIGKILL');
    await assert.rejects(waiting, { name: 'ControllerExitedError', lostJobs: 1 });
    assert.deepEqual(await exited, { code: null, signal: null, expected: false });
    await allGone(processes, 'its worker, once its controller is gone');
    assert.equal((await runCli(['sessions'])).stdout.match(/^crash\s+\d+\s+gone/m) !== null, true, 'listed as gone');
    await assert.rejects(spawnScatterGather({ session: 'crash', attachOnly: true }), SessionNotFoundError);
  });

  test('two callers starting one name at once start one session; the other finds it in use', async () => {
    const code = `
      try {
        const sg = await m.spawnScatterGather({ session: 'race', workers: 1, spareWorkers: 0 });
        console.log('STARTED ' + JSON.stringify(sg.session.attached));
        setInterval(() => {}, 1000);
      } catch (error) { console.log('REFUSED ' + JSON.stringify(error.name)); }
    `;
    const callers = [startScript(code), startScript(code)];
    const outcomes = await Promise.all(callers.map((caller) => caller.line(/(?:STARTED|REFUSED) (.*)/)));
    assert.deepEqual(outcomes.sort(), [false, 'SessionInUseError'].sort());
    for (const caller of callers) caller.child.kill('SIGKILL');
    const state = readSessionState(join(dir, 'race'));
    assert.ok(state && isAlive(state.pid));
    const processes = sessionProcesses(state.pid);
    assert.equal((await runCli(['sessions', 'end', 'race'])).code, 0);
    await allGone(processes, 'the raced session');
  });
});

describe('a session is private to its user', { timeout: 60_000 }, () => {
  let sg: ScatterGather;
  before(async () => {
    sg = await spawnScatterGather({ session: 'private', ...SMALL });
  });
  after(async () => sg?.close());

  test('its folders are 0700, its state 0600', () => {
    const mode = (path: string) => statSync(path).mode & 0o777;
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(sg.session!.dir), 0o700);
    assert.equal(mode(join(sg.session!.dir, 'state.json')), 0o600);
  });

  test('a sessions folder others may use, or a symlink, is refused', async () => {
    const open = mkdtempSync('/tmp/tsgo-');
    const link = `${open}-link`;
    try {
      chmodSync(open, 0o755);
      await assert.rejects(startIn(open), /refusing to keep tsgather sessions in .*: others may use it \(mode 755\); it must be 0700/);
      chmodSync(open, 0o700);
      symlinkSync(open, link);
      await assert.rejects(startIn(link), /refusing to keep tsgather sessions in .*: it is not a directory \(a symlink\?\)/);
    } finally {
      process.env.TSGATHER_SESSIONS_DIR = dir;
      rmSync(link, { force: true });
      rmSync(open, { recursive: true, force: true });
    }
  });

  test('another user can neither find it by name, nor use its folder, nor reach its socket', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test runs a caller as another user (setpriv) and needs root (it runs as root in CI)');
    const nobody = 65534;
    const tmp = mkdtempSync('/tmp/tsgu-');
    chownSync(tmp, nobody, nobody);
    // The checkout may be a folder only root may enter (a `mktemp -d` clone, as CI makes): nobody reads
    // what it needs of it through bind mounts in its own folder, in a mount namespace of its own.
    const pkg = join(tmp, 'pkg');
    const checkout = fileURLToPath(new URL('../..', import.meta.url));
    const shown = ['dist', 'node_modules', 'package.json'];
    mkdirSync(join(pkg, 'dist'), { recursive: true });
    mkdirSync(join(pkg, 'node_modules'));
    writeFileSync(join(pkg, 'package.json'), '');
    const bind = 'src=$1 dst=$2; shift 2; for p in ' + shown.join(' ') + '; do mount --bind "$src/$p" "$dst/$p" || exit 1; done; exec "$@"';
    const asNobody = (code: string, env: NodeJS.ProcessEnv) =>
      startScript(
        code,
        { ...env, TMPDIR: tmp, HOME: tmp },
        ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', bind, 'sh', checkout, pkg, 'setpriv', `--reuid=${nobody}`, `--regid=${nobody}`, '--clear-groups'],
        join(pkg, 'dist', 'caller', 'index.js'),
      );
    const attempt = (extra: string) => `
      try { await m.spawnScatterGather({ session: 'private', attachOnly: true }); console.log('ATTACHED'); }
      catch (error) { console.log('REFUSED ' + JSON.stringify([error.name, error.message])); }
      ${extra}
    `;
    try {
      const byName = asNobody(attempt(''), { TSGATHER_SESSIONS_DIR: '' });
      assert.deepEqual(await byName.line(/REFUSED (\[.*\])/), ['SessionNotFoundError', "no session named 'private' is running (for this user); leave out attachOnly to start it"]);
      assert.ok(existsSync(join(tmp, `tsgather-sessions-${nobody}`)), "nobody looked in nobody's own folder");

      const byFolder = asNobody(
        attempt(`
        const { statSync } = await import('node:fs');
        try { statSync(${JSON.stringify(join(sg.session!.dir, 's.sock'))}); console.log('REACHED'); } catch (error) { console.log('SOCKET ' + JSON.stringify(error.code)); }
      `),
        { TSGATHER_SESSIONS_DIR: dir },
      );
      const [name, message] = (await byFolder.line(/REFUSED (\[.*\])/)) as [string, string];
      assert.equal(name, 'Error');
      assert.match(message, /refusing to keep tsgather sessions in .*: it belongs to uid 0, not to you \(uid 65534\)/);
      assert.equal(await byFolder.line(/SOCKET (".*")/), 'EACCES');
      assert.equal(readSessionState(sg.session!.dir)?.attachedPid, process.pid, 'still attached here alone');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

/** spawnScatterGather with the sessions folder at `home`. */
function startIn(home: string): Promise<ScatterGather> {
  process.env.TSGATHER_SESSIONS_DIR = home;
  mkdirSync(home, { recursive: true });
  return spawnScatterGather({ session: 'refused', ...SMALL });
}
