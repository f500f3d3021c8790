/**
 * The kernel spoken to directly over ZeroMQ (no Jupyter server): message authentication, the
 * heartbeat during a busy cell, SIGINT, and a shutdown that leaves no child processes behind.
 */
import type { KernelMessage } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import * as zmq from 'zeromq';
import { KernelClient, parentId } from '../kernel/client.js';
import { endpoint } from '../kernel/connection.js';
import { launchKernel, type LaunchedKernel } from '../kernel/launch.js';
import { descendants, isAlive } from '../kernel/process-tree.js';
import { encode, newMessage, Signer } from '../kernel/wire.js';
import { waitUntil } from './jupyter-kernel-helpers.js';

async function startKernel(): Promise<{ kernel: LaunchedKernel; client: KernelClient }> {
  const kernel = await launchKernel();
  const client = KernelClient.connect(kernel.info);
  await client.waitForReady();
  return { kernel, client };
}

function resultText(executed: { iopub: KernelMessage.IIOPubMessage[] }): string {
  const result = executed.iopub.find((m) => m.header.msg_type === 'execute_result') as KernelMessage.IExecuteResultMsg | undefined;
  return String(result?.content.data['text/plain']);
}

describe('kernel over ZeroMQ', { timeout: 120_000 }, () => {
  let kernel: LaunchedKernel;
  let client: KernelClient;

  before(async () => ({ kernel, client } = await startKernel()));
  after(async () => {
    client?.close();
    await kernel?.kill();
  });

  test('a message with a bad signature is dropped; the next good one is answered', async () => {
    const forged = newMessage<KernelMessage.IInfoRequestMsg>({ msgType: 'kernel_info_request', channel: 'shell', content: {}, session: client.session });
    const answersToForged: KernelMessage.IMessage[] = [];
    const stop = client.on('shell', (message) => {
      if (parentId(message) === forged.header.msg_id) answersToForged.push(message);
    });
    client.sendFrames('shell', encode(new Signer('not-the-key'), forged));
    // shell requests are answered in order, so once the good one is answered the forged one never will be
    const reply = await client.request<KernelMessage.IInfoReplyMsg>('shell', 'kernel_info_request', {});
    stop();
    assert.equal(reply.content.status, 'ok');
    assert.deepEqual(answersToForged, []);
    // The kernel's stderr comes through a pipe of its own, which may trail the reply on ZeroMQ.
    await waitUntil(() => /message dropped/.test(kernel.stderr()), 5000, 'the kernel to log the dropped message');
  });

  test('kernel_info is answered on the control channel too', async () => {
    const reply = await client.request<KernelMessage.IInfoReplyMsg>('control', 'kernel_info_request', {});
    assert.ok(reply.content.status === 'ok');
    assert.equal(reply.content.language_info.name, 'typescript');
  });

  test('the kernel runs with a V8 flag (a young generation of at least 16 MB) that its cell worker, which refuses V8 flags, still gets', async () => {
    const kernelArgs = readFileSync(`/proc/${kernel.child.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(kernelArgs.includes('--min-semi-space-size=16'), `kernel started with ${kernelArgs.join(' ')}`);
    const cell = "(await import('node:v8')).getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size";
    assert.ok(Number(resultText(await client.execute(cell))) >= 16 * 1024 * 1024);
  });

  test('the heartbeat answers while a cell runs synchronous code', async () => {
    const busy = client.execute('const until = Date.now() + 3000; while (Date.now() < until) {} "done"');
    let finished = false;
    void busy.then(() => (finished = true));
    await client.next('iopub', (m) => m.header.msg_type === 'execute_input', 5000);
    const hb = new zmq.Request({ linger: 0, receiveTimeout: 2000 });
    hb.connect(endpoint(kernel.info, 'hb'));
    try {
      await hb.send('ping');
      const [echo] = await hb.receive();
      assert.equal(echo.toString(), 'ping');
    } finally {
      hb.close();
    }
    assert.equal(finished, false, 'the heartbeat answered before the cell finished');
    assert.equal(resultText(await busy), "'done'");
  });

  test('SIGINT interrupts a busy loop and variables survive', async () => {
    await client.execute('let kept = 7;');
    const busy = client.execute('for (;;) {}');
    await client.next('iopub', (m) => m.header.msg_type === 'execute_input', 5000);
    kernel.child.kill('SIGINT');
    const { reply } = await busy;
    assert.equal(reply.content.status, 'error');
    assert.equal((reply.content as KernelMessage.IReplyErrorContent).ename, 'Interrupted');
    assert.equal(resultText(await client.execute('kept * 6')), '42');
  });
});

describe('kernel shutdown', { timeout: 120_000 }, () => {
  for (const [channel, restart] of [
    ['control', false],
    ['shell', true],
  ] as const) {
    test(`shutdown_request on ${channel} (restart ${restart}) ends the kernel and the processes its cells started`, async () => {
      const { kernel, client } = await startKernel();
      try {
        const spawned = await client.execute(
          'const { spawn } = require("node:child_process");\n' +
            'const child = spawn("sh", ["-c", "sleep 600 & sleep 600; wait"], { stdio: "ignore" });\n' +
            'await new Promise((resolve) => child.once("spawn", resolve));\n' +
            'child.pid',
        );
        const childPid = Number(resultText(spawned));
        await waitUntil(() => descendants(childPid).length === 2, 5000, 'the shell to start both sleeps');
        const tree = [childPid, ...descendants(childPid)];
        const reply = await client.request<KernelMessage.IMessage>(channel, 'shutdown_request', { restart });
        assert.deepEqual(reply.content, { status: 'ok', restart });
        assert.equal(await kernel.exited, 0);
        await waitUntil(() => !tree.some(isAlive), 5000, `processes ${tree.join(', ')} to end`);
      } finally {
        client.close();
        await kernel.kill();
      }
    });
  }
});
