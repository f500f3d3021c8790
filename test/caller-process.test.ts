/**
 * The caller's process as a new user runs it: started by `node -e`, `node -p`, stdin or `node
 * --test`; killed outright; or ending without close(). Each runs in a process of its own.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnScatterGather } from '../caller/index.js';
import { alive, descendantsRunning, waitUntil } from './helpers.js';
import { descendants } from '../kernel/process-tree.js';

const index = fileURLToPath(new URL('../caller/index.js', import.meta.url));
const tree = fileURLToPath(new URL('../kernel/process-tree.js', import.meta.url));

/** A caller that runs one job, prints its value and how many controller children it has, and closes. */
const CALLER = `import(${JSON.stringify(index)}).then(async (m) => {
  const { readFileSync } = await import('node:fs');
  const { descendants } = await import(${JSON.stringify(tree)});
  const sg = await m.spawnScatterGather([], { workers: 1, echo: false, connectTimeoutMs: 10000 });
  await sg.define('inc', (x) => x + 1);
  const value = await sg.submit('inc', [41]);
  const controllers = descendants(process.pid).filter((pid) => { try { return readFileSync('/proc/' + pid + '/cmdline', 'utf8').includes('embedded/controller-main.js'); } catch { return false; } }).length;
  console.log('RESULT ' + JSON.stringify({ value, controllers }));
  await sg.close();
})`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs node with `args` (and `stdin`); past `timeoutMs` kills it and every process it started, and says so. */
function runNode(args: string[], { stdin, env, timeoutMs = 20_000 }: { stdin?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    // Without the outer test runner's mark, so that `node --test` in it runs its own file.
    const { NODE_TEST_CONTEXT: _, ...plain } = env ?? process.env;
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env: plain });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.stdin.end(stdin ?? '');
    const timer = setTimeout(() => {
      const started = descendants(child.pid!);
      for (const pid of [child.pid!, ...started]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      reject(new Error(`node ${args.join(' ').slice(0, 80)} did not finish within ${timeoutMs} ms (${started.length} processes under it); stderr: ${stderr.slice(-500)}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function resultOf(run: Run): { value: number; controllers: number } {
  const match = /RESULT (\{.*\})/.exec(run.stdout);
  assert.ok(match, `no result; stdout: ${run.stdout.slice(-500)} stderr: ${run.stderr.slice(-500)}`);
  return JSON.parse(match[1]!) as { value: number; controllers: number };
}

async function assertNothingLeft(): Promise<void> {
  await waitUntil(() => descendantsRunning('embedded/controller-main.js').length === 0 && descendantsRunning('server/worker.js').length === 0, 10_000, 'no controller or worker left running');
}

describe('a caller started however node starts a program', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsg-caller-'));
  const testFile = join(dir, 'caller.test.mjs');
  writeFileSync(testFile, `import { test } from 'node:test';\ntest('spawns', async () => { await ${CALLER}; });\n`);

  const ways: Array<[string, string[], string | undefined]> = [
    ['node -e', ['-e', CALLER], undefined],
    ['node -p', ['-p', CALLER], undefined],
    ['node --input-type=module -e', ['--input-type=module', '-e', `await ${CALLER}`], undefined],
    ['a script on stdin', [], CALLER],
    ['a module on stdin (node --input-type=module -)', ['--input-type=module', '-'], `await ${CALLER}`],
    ['node --test', ['--test', testFile], undefined],
  ];
  for (const [way, args, stdin] of ways) {
    test(`${way}: one controller child, the result comes back, nothing left running`, async () => {
      const run = await runNode(args, { stdin });
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(resultOf(run), { value: 42, controllers: 1 });
      await assertNothingLeft();
    });
  }

  test('flags that are not the caller program own (a heap limit) still reach the controller child', async () => {
    const run = await runNode([
      '--max-old-space-size=300',
      '-e',
      CALLER.replace("includes('embedded/controller-main.js')", "includes('embedded/controller-main.js') && readFileSync('/proc/' + pid + '/cmdline', 'utf8').includes('--max-old-space-size=300')"),
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(resultOf(run), { value: 42, controllers: 1 });
  });
});

describe('socket folders', () => {
  /** A temp dir of the test's own, short enough for socket paths, given to callers as TMPDIR. */
  function freshTmp(): string {
    return mkdtempSync('/tmp/tsgt-');
  }

  test('20 callers killed with SIGKILL leave nothing behind in the temp dir', async () => {
    const tmp = freshTmp();
    try {
      const script = `import(${JSON.stringify(index)}).then(async (m) => {
        const sg = await m.spawnScatterGather([], { workers: 1, echo: false });
        console.log('CONTROLLER ' + sg.controllerPid);
        setInterval(() => {}, 1000);
      })`;
      const callers = Array.from({ length: 20 }, async () => {
        const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TMPDIR: tmp } });
        const controller = await new Promise<number>((resolve, reject) => {
          let out = '';
          child.stdout.setEncoding('utf8').on('data', (text: string) => {
            out += text;
            const match = /CONTROLLER (\d+)/.exec(out);
            if (match) resolve(Number(match[1]));
          });
          child.once('exit', (code) => reject(new Error(`caller exited with ${code} before its pool was up`)));
        });
        assert.ok(readdirSync(tmp).length > 0, 'the caller made its socket folder here');
        child.kill('SIGKILL');
        await waitUntil(() => !alive(controller), 10_000, `controller ${controller} to stop after its caller was killed`);
      });
      await Promise.all(callers);
      assert.deepEqual(readdirSync(tmp), []);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a caller ending on an uncaught throw leaves nothing behind', async () => {
    const tmp = freshTmp();
    try {
      const script = `import(${JSON.stringify(index)}).then(async (m) => {
        const sg = await m.spawnScatterGather([], { workers: 1, echo: false });
        console.log('CONTROLLER ' + sg.controllerPid);
        throw new Error('boom');
      })`;
      const run = await runNode(['-e', script], { env: { ...process.env, TMPDIR: tmp } });
      assert.notEqual(run.code, 0);
      assert.match(run.stderr, /boom/);
      const controller = Number(/CONTROLLER (\d+)/.exec(run.stdout)?.[1]);
      await waitUntil(() => !alive(controller), 10_000, 'the controller to stop');
      assert.deepEqual(readdirSync(tmp), []);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("a folder left by a process that no longer runs is removed by the next caller; a live process's folder and foreign ones are kept", async () => {
    const tmp = freshTmp();
    try {
      const exited = spawn(process.execPath, ['-e', '0']);
      const deadPid = await new Promise<number>((resolve) => exited.once('exit', () => resolve(exited.pid!)));
      const namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1];
      const dead = join(tmp, `tsg-${namespace}-${deadPid}-abc123`);
      const live = join(tmp, `tsg-${namespace}-${process.pid}-abc123`);
      const otherNamespace = join(tmp, `tsg-1-${deadPid}-abc123`);
      const notOurs = join(tmp, 'tsg-unrelated');
      for (const dir of [dead, live, otherNamespace, notOurs]) mkdirSync(dir);
      writeFileSync(join(dead, 'caller-1.sock'), '');
      const run = await runNode(['-e', CALLER], { env: { ...process.env, TMPDIR: tmp } });
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(readdirSync(tmp).sort(), [`tsg-1-${deadPid}-abc123`, `tsg-${namespace}-${process.pid}-abc123`, 'tsg-unrelated'].sort());
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('what keeps the caller alive', () => {
  test('a script that forgets close() exits once its results are in, and its controller and workers go too', async () => {
    const script = `import(${JSON.stringify(index)}).then(async (m) => {
      const sg = await m.spawnScatterGather([], { workers: 2, echo: false });
      console.log('CONTROLLER ' + sg.controllerPid);
      await sg.define('work', (x) => x * 2);
      console.log('RESULT ' + JSON.stringify(await sg.map('work', [[[1]], [[2]], [[3]]])));
    })`;
    const run = await runNode(['-e', script], { timeoutMs: 15_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /RESULT \[2,4,6\]/);
    const controller = Number(/CONTROLLER (\d+)/.exec(run.stdout)?.[1]);
    await waitUntil(() => !alive(controller), 10_000, 'the controller to stop after its caller exited');
  });

  test('jobs outstanding keep the caller alive until their results arrive, taken or not', async () => {
    const script = `import(${JSON.stringify(index)}).then(async (m) => {
      const sg = await m.spawnScatterGather([], { workers: 1, echo: false });
      await sg.define('slow', async (ms) => { await new Promise((r) => setTimeout(r, ms)); console.log('ran'); return ms; });
      sg.addJob('slow', [[[300]]]);
      sg.on('progress', (p) => { if (p.done === 1) console.log('ARRIVED'); });
    })`;
    const run = await runNode(['-e', script], { timeoutMs: 15_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /ARRIVED/);
  });

  test('work added from a continuation of a listener, as the pool turns idle, still keeps the caller alive', async () => {
    // The second job is added in a microtask that runs while the receive loop decides it is idle.
    const script = `import(${JSON.stringify(index)}).then(async (m) => {
      const sg = await m.spawnScatterGather([], { workers: 1, echo: false });
      await sg.define('inc', (x) => x + 1);
      sg.on('progress', (p) => {
        if (p.done === 1) Promise.resolve().then(() => sg.submit('inc', [1]).then((v) => console.log('SECOND ' + v)));
      });
      sg.addJob('inc', [[[0]]]);
    })`;
    const run = await runNode(['-e', script], { timeoutMs: 15_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /SECOND 2/);
  });

  test('await using closes the pool at the end of its block', async () => {
    let pid: number | undefined;
    {
      await using sg = await spawnScatterGather([], { workers: 1, echo: false });
      pid = sg.controllerPid;
      await sg.define('inc', (x: number) => x + 1);
      assert.equal(await sg.submit('inc', [1]), 2);
    }
    assert.equal(alive(pid!), false, 'the controller child has exited when the block ends');
  });
});

describe('small things a new user meets', () => {
  test("a job's output without a trailing newline is not glued to the next line's tag", async () => {
    // Job 1 leaves its line open; job 2 prints whole lines; job 3 finishes job-1-like lines in two writes.
    const script = `import(${JSON.stringify(index)}).then(async (m) => {
      const sg = await m.spawnScatterGather([], { workers: 1 });
      await sg.define('say', (parts) => { for (const part of parts) process.stdout.write(part); });
      await sg.map('say', [[[['open']]], [[['one\\ntwo\\n']]], [[['half', ' whole\\n']]]]);
      await sg.close();
    })`;
    const run = await runNode(['-e', script]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split('\n').filter(Boolean);
    assert.deepEqual(
      lines.map((line) => line.replace(/^\[job (\d+) w\d+@[^\]]+\] /, 'job$1: ')),
      ['job1: open', 'job2: one', 'job2: two', 'job3: half whole'],
    );
  });

  test('define reports a syntax error in source text itself, with its position, and ships nothing', async () => {
    await using sg = await spawnScatterGather([], { workers: 1, echo: false });
    await assert.rejects(sg.define('s', 'function ( {'), (error: unknown) => {
      assert.ok(error instanceof SyntaxError);
      assert.match(error.message, /^define\('s'\): the source does not parse at line 1, column \d+: Unexpected token/);
      return true;
    });
    await assert.rejects(sg.define('t', '(a) => {\n  return a +* 2;\n}'), /at line 2, column 13: Unexpected token/);
    // Nothing was shipped: the name is unknown to the workers.
    await assert.rejects(sg.submit('s', []), /UnknownFunction|not defined|unknown function/i);
    assert.equal(await sg.define('ok', 'method(x) { return x + 1; }'), 1);
    assert.equal(await sg.submit('ok', [1]), 2);
  });
});
