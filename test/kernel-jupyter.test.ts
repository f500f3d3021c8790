/**
 * The kernel driven the way JupyterLab drives it: a real Jupyter server starts it from our
 * kernelspec, and @jupyterlab/services talks to it over the server's websocket.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isAlive } from '../kernel/process-tree.js';
import { withMallocTunables } from '../runtime/malloc-tunables.js';
import type { JupyterServer } from './jupyter-server.js';
import { execute, withKernel, outputsOf, streamText, waitUntil } from './jupyter-kernel-helpers.js';

describe('kernel through a Jupyter server', { timeout: 180_000 }, () => {
  let server: JupyterServer;
  let kernel: Kernel.IKernelConnection;

  withKernel((started) => ({ server, kernel } = started));

  test('kernel_info describes a TypeScript kernel speaking protocol 5.3', async () => {
    const info = await kernel.requestKernelInfo();
    assert.ok(info && info.content.status === 'ok');
    assert.equal(info.content.protocol_version, '5.3');
    assert.equal(info.content.implementation, 'tsgather');
    assert.deepEqual(
      { ...info.content.language_info, version: undefined },
      {
        name: 'typescript',
        version: undefined,
        mimetype: 'text/typescript',
        file_extension: '.ts',
        pygments_lexer: 'typescript',
        codemirror_mode: 'application/typescript',
        nbconvert_exporter: 'script',
      },
    );
  });

  test("Jupyter starts the kernel with the kernelspec's malloc tunables", async () => {
    const run = await execute(kernel, 'console.log(process.env.GLIBC_TUNABLES)');
    assert.equal(run.reply.content.status, 'ok');
    assert.equal(streamText(run.iopub, 'stdout'), `${withMallocTunables({}).GLIBC_TUNABLES}\n`);
  });

  test('streams, the last value as execute_result, and execution counts', async () => {
    const first = await execute(kernel, 'console.log("out"); console.error("err"); process.stdout.write("raw\\n"); 6 * 7');
    assert.equal(first.reply.content.status, 'ok');
    assert.equal(streamText(first.iopub, 'stdout'), 'out\nraw\n');
    assert.equal(streamText(first.iopub, 'stderr'), 'err\n');
    const [result] = outputsOf(first.iopub, 'execute_result') as KernelMessage.IExecuteResultMsg[];
    assert.equal(result.content.data['text/plain'], '42');
    assert.equal(result.content.execution_count, first.reply.content.execution_count);

    const silent = await execute(kernel, '1 + 1', { silent: true });
    assert.equal(outputsOf(silent.iopub, 'execute_result').length, 0);
    const undefinedValue = await execute(kernel, 'undefined');
    assert.equal(outputsOf(undefinedValue.iopub, 'execute_result').length, 0);
    assert.equal(undefinedValue.reply.content.execution_count, (first.reply.content.execution_count as number) + 1);
  });

  test('a failing cell gives exactly one error output and an error reply', async () => {
    const { reply, iopub } = await execute(kernel, 'const safe = 1;\nnull.boom');
    assert.equal(reply.content.status, 'error');
    const content = reply.content as KernelMessage.IReplyErrorContent;
    assert.equal(content.ename, 'TypeError');
    assert.match(content.evalue, /Cannot read properties of null/);
    assert.ok(content.traceback.length > 0);
    assert.equal(outputsOf(iopub, 'error').length, 1);
    assert.equal(streamText(iopub, 'stderr'), '');
  });

  test('display and update_display_data share a display_id', async () => {
    const { iopub } = await execute(
      kernel,
      'const handle = display.html("<b>one</b>"); handle.update("<b>two</b>"); display.markdown("*md*"); display.json({ a: 1 }); display.svg("<svg/>"); display.png(Buffer.from([1, 2, 3])); display.vegalite({ mark: "bar" });',
    );
    const [shown, ...others] = outputsOf(iopub, 'display_data') as KernelMessage.IDisplayDataMsg[];
    const [updated] = outputsOf(iopub, 'update_display_data') as KernelMessage.IUpdateDisplayDataMsg[];
    assert.equal(shown.content.data['text/html'], '<b>one</b>');
    assert.equal(updated.content.data['text/html'], '<b>two</b>');
    assert.ok(shown.content.transient?.display_id);
    assert.equal(updated.content.transient.display_id, shown.content.transient?.display_id);
    assert.deepEqual(
      others.map((message) => Object.keys(message.content.data).find((mime) => mime !== 'text/plain')),
      ['text/markdown', 'application/json', 'image/svg+xml', 'image/png', 'application/vnd.vegalite.v5+json'],
    );
    assert.equal(outputsOf(iopub, 'execute_result').length, 0, 'a display handle as last value shows nothing');
  });

  test('re-running a cell that declares const and let works, and state persists', async () => {
    const cell = 'const greeting = "hi"; let counter = (globalThis.runs = (globalThis.runs ?? 0) + 1); `${greeting} ${counter}`';
    await execute(kernel, cell);
    const again = await execute(kernel, cell);
    assert.equal(again.reply.content.status, 'ok');
    assert.equal((outputsOf(again.iopub, 'execute_result')[0] as KernelMessage.IExecuteResultMsg).content.data['text/plain'], "'hi 2'");
  });

  test('top-level await, TypeScript syntax, and type errors that do not block', async () => {
    const cell = [
      'interface Point { x: number }',
      'type Named = Point & { name?: string };',
      'enum Direction { Up = 1, Down }',
      'function identity<T>(value: T): T { return value; }',
      'const p: Named = { x: await Promise.resolve(40) } as Named;',
      'const wrong: number = "not checked" as any;',
      'identity<number>(p.x) + Direction.Down',
    ].join('\n');
    const { reply, iopub } = await execute(kernel, cell);
    assert.equal(reply.content.status, 'ok');
    assert.equal((outputsOf(iopub, 'execute_result')[0] as KernelMessage.IExecuteResultMsg).content.data['text/plain'], '42');
  });

  test('imports and require, including this package by name', async () => {
    const { reply, iopub } = await execute(
      kernel,
      'import { basename } from "node:path";\nconst engine = await import("tsgather");\n[basename("/a/b.txt"), typeof engine.spawnScatterGather, require("tsgather").spawnScatterGather === spawnScatterGather]',
    );
    assert.equal(reply.content.status, 'ok');
    assert.equal((outputsOf(iopub, 'execute_result')[0] as KernelMessage.IExecuteResultMsg).content.data['text/plain'], "[ 'b.txt', 'function', true ]");
  });

  test('completion of globals and members, with a cursor after non-BMP characters', async () => {
    await execute(kernel, 'const inventory = { apples: 1, apricots: 2, bananas: 3 };');
    const code = 'const label = "🍎🍏 fruit"; inventory.ap';
    const reply = await kernel.requestComplete({ code, cursor_pos: [...code].length });
    assert.ok(reply.content.status === 'ok');
    assert.deepEqual(reply.content.matches, ['apples', 'apricots']);
    assert.equal(reply.content.cursor_end, [...code].length);
    assert.equal(reply.content.cursor_start, [...code].length - 2);

    const globals = await kernel.requestComplete({ code: '🙂; inven', cursor_pos: 8 });
    assert.ok(globals.content.status === 'ok');
    assert.ok(globals.content.matches.includes('inventory'));
    assert.equal(globals.content.cursor_start, 3);
  });

  test('inspection shows a value', async () => {
    const reply = await kernel.requestInspect({ code: 'inventory.apples + 1', cursor_pos: 2, detail_level: 0 });
    assert.ok(reply.content.status === 'ok' && reply.content.found);
    assert.match(String(reply.content.data['text/plain']), /inventory: Object[\s\S]*bananas: 3/);
  });

  test('is_complete tells complete, incomplete and invalid code apart', async () => {
    const status = async (code: string) => (await kernel.requestIsComplete({ code })).content;
    assert.deepEqual(await status('let a = 1'), { status: 'complete' });
    assert.deepEqual(await status('function f() {'), { status: 'incomplete', indent: '  ' });
    assert.deepEqual(await status('let = = 1'), { status: 'invalid' });
  });

  test('input() asks the frontend when allow_stdin is set', async () => {
    const { reply, iopub } = await execute(kernel, 'const who = await input("name? "); `hello ${who}`', {
      allowStdin: true,
      onStdin: (message, future) => {
        if (message.header.msg_type === 'input_request') future.sendInputReply({ status: 'ok', value: 'Ada' }, message.header as never);
      },
    });
    assert.equal(reply.content.status, 'ok');
    assert.equal((outputsOf(iopub, 'execute_result')[0] as KernelMessage.IExecuteResultMsg).content.data['text/plain'], "'hello Ada'");
  });

  test('an error with stop_on_error aborts the execute requests queued behind it', async () => {
    // The failing cell waits for input that is answered only once the second request has been sent,
    // so the second is queued behind it when it fails.
    const failing = kernel.requestExecute({ code: 'await input("go? "); throw new Error("first fails")', stop_on_error: true, allow_stdin: true });
    const queued = kernel.requestExecute({ code: 'globalThis.queuedRan = true' });
    failing.onStdin = (message) => {
      if (message.header.msg_type === 'input_request') failing.sendInputReply({ status: 'ok', value: 'go' }, message.header as never);
    };
    assert.equal((await failing.done).content.status, 'error');
    assert.equal((await queued.done).content.status, 'aborted');
    const check = await execute(kernel, 'typeof globalThis.queuedRan');
    assert.equal((outputsOf(check.iopub, 'execute_result')[0] as KernelMessage.IExecuteResultMsg).content.data['text/plain'], "'undefined'");
  });

  test('interrupt breaks a synchronous busy loop and the kernel state survives', async () => {
    await execute(kernel, 'let survivor = "still here"; globalThis.spins = 0;');
    const future = kernel.requestExecute({ code: 'while (true) { globalThis.spins++ }' });
    const started = new Promise<void>((resolve) => {
      future.onIOPub = (message) => {
        if (message.header.msg_type === 'execute_input') resolve();
      };
    });
    await started;
    await kernel.interrupt();
    const reply = await future.done;
    assert.equal(reply.content.status, 'error');
    assert.equal((reply.content as KernelMessage.IReplyErrorContent).ename, 'Interrupted');
    const { iopub } = await execute(kernel, '`${survivor}, spun ${globalThis.spins > 0}`');
    assert.equal((outputsOf(iopub, 'execute_result')[0] as KernelMessage.IExecuteResultMsg).content.data['text/plain'], "'still here, spun true'");
  });

  test('restart gives a fresh kernel process and ends the old one', async () => {
    const before = await execute(kernel, 'process.pid');
    const oldPid = Number((outputsOf(before.iopub, 'execute_result')[0] as KernelMessage.IExecuteResultMsg).content.data['text/plain']);
    await kernel.restart();
    const after = await execute(kernel, '[process.pid, typeof survivor]');
    const [newPid, survivor] = JSON.parse(String((outputsOf(after.iopub, 'execute_result')[0] as KernelMessage.IExecuteResultMsg).content.data['text/plain']).replace(/'/g, '"')) as [number, string];
    assert.notEqual(newPid, oldPid);
    assert.equal(survivor, 'undefined');
    await waitUntil(() => !isAlive(oldPid), 10_000, `old kernel process ${oldPid} to exit`);
  });
});
