/**
 * Interrupting a cell that awaits, through a real Jupyter server: nothing of the interrupted cell
 * runs or prints again, its awaiting declarations are usable afterwards, and the jobs it queued
 * stay collectable by later cells.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { JupyterServer } from './jupyter-server.js';
import { execute, withKernel, outputsOf, streamText, type Executed } from './jupyter-kernel-helpers.js';

type ReplyContent = KernelMessage.IExecuteReplyMsg['content'];

/** Starts a cell, waits until it has printed `marker`, interrupts it, and returns its reply and outputs. */
async function interruptAfter(kernel: Kernel.IKernelConnection, code: string, marker: string): Promise<Executed> {
  const future = kernel.requestExecute({ code, stop_on_error: false });
  const iopub: KernelMessage.IIOPubMessage[] = [];
  const printed = new Promise<void>((resolve) => {
    future.onIOPub = (message) => {
      if (message.header.msg_type === 'status') return;
      iopub.push(message);
      if (streamText(iopub, 'stdout').includes(marker)) resolve();
    };
  });
  await Promise.race([printed, future.done.then((reply) => assert.fail(`the cell ended before printing ${marker}: ${JSON.stringify(reply.content)}`))]);
  await kernel.interrupt();
  return { reply: await future.done, iopub };
}

function value(run: Executed): string {
  assert.equal(run.reply.content.status, 'ok', JSON.stringify(run.reply.content));
  const [result] = outputsOf(run.iopub, 'execute_result') as KernelMessage.IExecuteResultMsg[];
  return String(result?.content.data['text/plain']);
}

function assertInterrupted(content: ReplyContent): void {
  assert.equal(content.status, 'error', JSON.stringify(content));
  assert.equal((content as KernelMessage.IReplyErrorContent).ename, 'Interrupted');
}

describe('interrupting a cell that awaits', { timeout: 180_000 }, () => {
  let server: JupyterServer;
  let kernel: Kernel.IKernelConnection;
  const scratch = mkdtempSync(join(tmpdir(), 'tsgather-interrupt-'));

  withKernel((started) => ({ server, kernel } = started));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  test('a timer loop, at top level or in a function, stops: no more output and no more assignments', async () => {
    const loops = {
      'top level': 'globalThis.ticks = 0;\nfor (;;) {\n  await new Promise((resolve) => setTimeout(resolve, 5));\n  console.log("tick", ++globalThis.ticks);\n}',
      'in a function':
        'async function spin() {\n  for (;;) {\n    await new Promise((resolve) => setTimeout(resolve, 5));\n    console.log("tick", ++globalThis.ticks);\n  }\n}\nglobalThis.ticks = 0;\nawait spin();',
      setInterval: 'globalThis.ticks = 0;\nawait new Promise(() => setInterval(() => console.log("tick", ++globalThis.ticks), 5));',
    };
    for (const [where, code] of Object.entries(loops)) {
      const interrupted = await interruptAfter(kernel, code, 'tick 1');
      assertInterrupted(interrupted.reply.content);
      // The loop's 5 ms timers would fire many times before this cell's 100 ms one does.
      const next = await execute(kernel, 'const seen = globalThis.ticks;\nawait new Promise((resolve) => setTimeout(resolve, 100));\nglobalThis.ticks - seen');
      assert.equal(value(next), '0', `${where}: the loop went on`);
      assert.doesNotMatch(streamText(next.iopub, 'stdout'), /tick/, `${where}: the loop printed into the next cell`);
    }
  });

  test('a promise that settles after the interrupt resumes neither the cell nor the functions it awaited', async () => {
    const interrupted = await interruptAfter(
      kernel,
      [
        'async function gate() {',
        '  const opened = await new Promise((resolve) => (globalThis.openGate = resolve));',
        '  globalThis.nestedRan = opened;',
        '  console.log("nested resumed");',
        '  return opened;',
        '}',
        'console.log("waiting");',
        'const got = await gate();',
        'globalThis.topRan = true;',
        'console.log("top resumed");',
      ].join('\n'),
      'waiting',
    );
    assertInterrupted(interrupted.reply.content);
    const next = await execute(kernel, 'openGate(5);\nawait new Promise((resolve) => setImmediate(resolve));\n[globalThis.nestedRan, globalThis.topRan, typeof got]');
    assert.equal(value(next), "[ undefined, undefined, 'undefined' ]");
    assert.equal(streamText(next.iopub, 'stdout'), '');
  });

  test('declarations awaiting at the interrupt are undefined afterwards, not in the temporal dead zone, and can be declared again', async () => {
    const interrupted = await interruptAfter(
      kernel,
      'const early = "kept";\nconsole.log("awaiting");\nconst pending = await new Promise(() => {});\nlet later = 1;\nconst { a, b: [c] } = { a: 1, b: [2] };',
      'awaiting',
    );
    assertInterrupted(interrupted.reply.content);
    assert.equal(value(await execute(kernel, '[early, typeof pending, typeof later, typeof a, typeof c]')), "[ 'kept', 'undefined', 'undefined', 'undefined', 'undefined' ]");
    assert.equal(value(await execute(kernel, 'const pending = 3;\nlet later = 4;\npending * later')), '12');
  });

  test('jobs queued by an interrupted cell stay collectable, and waits of later cells show progress', async () => {
    const release = join(scratch, 'release-jobs');
    const setup = await execute(
      kernel,
      [
        'const sg = await spawnScatterGather(undefined, { workers: 2 });',
        '// a job that holds until the test creates the release file',
        'await sg.define("held", async (path, n) => {',
        '  const fs = require("node:fs");',
        '  while (!fs.existsSync(path)) await new Promise((resolve) => setTimeout(resolve, 10));',
        '  return n * 10;',
        '});',
      ].join('\n'),
    );
    assert.equal(setup.reply.content.status, 'ok', JSON.stringify(setup.reply.content));

    const interrupted = await interruptAfter(
      kernel,
      `const taken = [];\nsg.addJob("held", [1, 2, 3].map((n) => [[${JSON.stringify(release)}, n]]));\nconsole.log("queued");\nfor await (const result of sg.results()) taken.push(result.value);`,
      'queued',
    );
    assertInterrupted(interrupted.reply.content);
    const waiting = await interruptAfter(kernel, 'console.log("waiting");\nconst all = await sg.waitForResult({ all: true });', 'waiting');
    assertInterrupted(waiting.reply.content);

    writeFileSync(release, '');
    const collected = await execute(kernel, 'const results = await sg.waitForResult({ all: true });\n[results.map((result) => result.value).sort(), taken.length, typeof all]');
    assert.equal(value(collected), "[ [ 10, 20, 30 ], 0, 'undefined' ]");
    assert.ok(outputsOf(collected.iopub, 'display_data').length > 0, 'the later wait shows its progress display');
  });

  test('a ScatterGather spawned by a cell that is then interrupted goes on working: results, job output and progress reach later cells', async () => {
    const interrupted = await interruptAfter(
      kernel,
      'const spawned = await spawnScatterGather(undefined, { workers: 1 });\nawait spawned.define("echo", (x) => {\n  console.log("job says", x);\n  return x;\n});\nconsole.log("spawned");\nawait new Promise(() => {});',
      'spawned',
    );
    assertInterrupted(interrupted.reply.content);
    const used = await execute(kernel, 'const echoed = await spawned.map("echo", [[[7]], [[8]]]);\nawait spawned.close();\nechoed');
    assert.equal(value(used), '[ 7, 8 ]');
    assert.match(streamText(used.iopub, 'stdout'), /job says 7/);
    assert.ok(outputsOf(used.iopub, 'display_data').length > 0, 'the map shows its progress display');
  });

  test('a map interrupted while it feeds a long list queues no more of it', async () => {
    const release = join(scratch, 'release-map');
    const interrupted = await interruptAfter(
      kernel,
      `const small = await spawnScatterGather(undefined, { workers: 1, maxQueued: 4 });\nawait small.define("held", ${heldSource()});\nconsole.log("mapping");\nawait small.map("held", Array.from({ length: 40 }, (_, i) => [[${JSON.stringify(release)}, i]]));`,
      'mapping',
    );
    assertInterrupted(interrupted.reply.content);
    const queued = value(await execute(kernel, 'small.progress.total'));
    writeFileSync(release, '');
    const after = await execute(
      kernel,
      'while (small.progress.outstanding > 0) await new Promise((resolve) => small.once("progress", resolve));\nawait new Promise((resolve) => setImmediate(resolve));\nsmall.progress.total',
    );
    assert.equal(value(after), queued, 'no job was queued after the interrupt');
    assert.ok(Number(queued) <= 4, `${queued} jobs queued under maxQueued 4`);
  });
});

function heldSource(): string {
  return 'async (path, n) => {\n  const fs = require("node:fs");\n  while (!fs.existsSync(path)) await new Promise((resolve) => setTimeout(resolve, 10));\n  return n;\n}';
}
