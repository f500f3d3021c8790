/**
 * A named session across a kernel restart, driven as JupyterLab drives it: a real Jupyter server
 * restarts the kernel between a cell that queued jobs and a cell that attaches by name and collects
 * them: those that finished before the restart (not taken), while no kernel was attached, and after.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAlive } from '../kernel/process-tree.js';
import { readSessionState } from '../protocol/session-dir.js';
import { execute, outputsOf, streamText, startKernel, stopKernel } from './jupyter-kernel-helpers.js';
import type { JupyterServer } from './jupyter-server.js';
import { allGone, endSessionsIn, gatedDone, GATED, openGate, sessionProcesses, useSessionsDir } from './session-helpers.js';
import { waitUntil } from './helpers.js';

/** Runs a cell and returns its value (its execute_result), parsed as JSON; fails with its error or stderr. */
async function cell(kernel: Kernel.IKernelConnection, code: string): Promise<unknown> {
  const run = await execute(kernel, code);
  const error = run.reply.content.status === 'error' ? (run.reply.content as KernelMessage.IReplyErrorContent) : undefined;
  assert.equal(run.reply.content.status, 'ok', `${error?.ename}: ${error?.evalue}\n${streamText(run.iopub, 'stderr')}`);
  const [result] = outputsOf(run.iopub, 'execute_result') as KernelMessage.IExecuteResultMsg[];
  return result ? JSON.parse(String(result.content.data['text/plain']).replace(/^'|'$/g, '')) : undefined;
}

describe('a session across a kernel restart', { timeout: 180_000 }, () => {
  let dir: string;
  let server: JupyterServer;
  let kernel: Kernel.IKernelConnection;

  before(async () => {
    dir = useSessionsDir(); // before the server starts: its kernels inherit it
    ({ server, kernel } = await startKernel());
  });

  after(async () => {
    await stopKernel(server, kernel);
    endSessionsIn(dir);
  });

  test('a cell queues jobs, the kernel restarts, a cell in the new kernel attaches by name and collects every result once', async () => {
    const meanwhile = join(dir, 'meanwhile');
    const later = join(dir, 'later');
    const first = (await cell(
      kernel,
      `const sg = await spawnScatterGather({ session: 'notebook', workers: 2, spareWorkers: 0 });
      await sg.define('gated', ${GATED});
      sg.addJob('gated', [1, 2, 3].map((x) => [['/', x]]));
      sg.addJob('gated', [4, 5, 6].map((x) => [[${JSON.stringify(meanwhile)}, x]]));
      sg.addJob('gated', [7, 8].map((x) => [[${JSON.stringify(later)}, x]]));
      while (sg.progress.done < 3) await new Promise((resolve) => sg.once('progress', resolve));
      JSON.stringify({ pid: sg.session.pid, kernel: process.pid, done: sg.progress.done })`,
    )) as { pid: number; kernel: number; done: number };
    assert.equal(first.done, 3, 'three results are in the old kernel, not taken');
    const processes = sessionProcesses(first.pid);
    assert.equal(processes.length, 3, 'the controller and its two workers');

    await kernel.restart();
    await waitUntil(() => !isAlive(first.kernel), 10_000, 'the old kernel to exit');
    assert.ok(processes.every(isAlive), 'the session and its workers outlive the kernel');
    assert.equal(readSessionState(join(dir, 'notebook'))?.attachedPid, undefined, 'the kernel detached as it shut down');

    openGate(meanwhile);
    await gatedDone(meanwhile, [4, 5, 6]); // finished with no kernel attached
    const attached = (await cell(
      kernel,
      `const sg = await spawnScatterGather({ session: 'notebook', attachOnly: true });
      JSON.stringify({ pid: sg.session.pid, attached: sg.session.attached, owed: sg.session.owed, held: sg.session.held })`,
    )) as { pid: number; attached: boolean; owed: number; held: number };
    assert.deepEqual({ ...attached, held: attached.held >= 6 }, { pid: first.pid, attached: true, owed: 8, held: true });

    openGate(later);
    const ids = (await cell(kernel, `JSON.stringify((await sg.waitForResult({ all: true })).map((r) => [r.id, r.value]).sort((a, b) => a[0] - b[0]))`)) as Array<[number, number]>;
    assert.deepEqual(
      ids,
      [1, 2, 3, 4, 5, 6, 7, 8].map((id) => [id, id * 2]),
    );
    assert.equal(await cell(kernel, `JSON.stringify(await sg.submit('gated', ['/', 21]))`), 42, 'the definition is still there');

    await cell(kernel, 'await sg.close()');
    await allGone(processes, 'the session after close()');
    assert.equal(existsSync(join(dir, 'notebook')), false);
  });
});
