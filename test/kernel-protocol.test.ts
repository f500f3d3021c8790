/**
 * Protocol completeness: the upstream kernel test suite (Debian's python3-jupyter-kernel-test) run
 * with jupyter_client against our installed kernelspec, then history with outputs, `?` help
 * pages, clear_output, comms and the kernelspec's logos through a real Jupyter server driven by
 * @jupyterlab/services, as JupyterLab drives it.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { LOGO_FILES } from '../kernel/install.js';
import { execute, withKernel, outputsOf, streamText } from './jupyter-kernel-helpers.js';
import { jupyterEnvironment, type JupyterServer } from './jupyter-server.js';

const PYTHON_TESTS = resolve(import.meta.dirname, '..', '..', 'test', 'python');
const SUITE_TIMEOUT_MS = 150_000;

function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    // a kernel that never answers would make the suite wait forever (some of its waits have no timeout)
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.once('error', fail);
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

test('the upstream kernel test suite passes with every test run and none skipped', { timeout: SUITE_TIMEOUT_MS + 30_000 }, async () => {
  const environment = await jupyterEnvironment();
  try {
    const { code, output } = await run('/usr/bin/python3', ['-m', 'unittest', 'test_tsgather_kernel'], {
      cwd: PYTHON_TESTS,
      env: { ...environment.env, PYTHONDONTWRITEBYTECODE: '1' },
      timeoutMs: SUITE_TIMEOUT_MS,
    });
    // the kernel's own log lines (JSON, on the kernel's stderr) are interleaved; the verdict is unittest's
    const verdict = output
      .split('\n')
      .filter((line) => !line.startsWith('{'))
      .join('\n');
    assert.equal(code, 0, verdict);
    const ran = Number(/^Ran (\d+) tests? in/m.exec(output)?.[1]);
    // the 12 tests of jupyter_kernel_test 0.4.5's KernelTests, and our three
    assert.equal(ran, 15, verdict);
    assert.match(output, /^OK$/m, verdict);
    assert.doesNotMatch(output, /skipped|expected failures|unexpected successes/, verdict);
  } finally {
    await environment.remove();
  }
});

describe('protocol details through a Jupyter server', { timeout: 120_000 }, () => {
  let server: JupyterServer;
  let kernel: Kernel.IKernelConnection;

  withKernel((started) => ({ server, kernel } = started));

  const resultOf = (executed: { iopub: KernelMessage.IIOPubMessage[] }) => (outputsOf(executed.iopub, 'execute_result')[0] as KernelMessage.IExecuteResultMsg | undefined)?.content.data['text/plain'];

  test('the kernelspec API lists and serves the 32×32 and 64×64 PNG logos and the SVG', async () => {
    const headers = { Authorization: `token ${server.settings.token}` };
    const specs = (await (await fetch(`${server.baseUrl}api/kernelspecs`, { headers })).json()) as { kernelspecs: Record<string, { resources: Record<string, string> }> };
    const resources = specs.kernelspecs.tsgather!.resources;
    assert.deepEqual(Object.keys(resources).sort(), ['logo-32x32', 'logo-64x64', 'logo-svg']);
    for (const file of LOGO_FILES) {
      const response = await fetch(`${server.baseUrl}kernelspecs/tsgather/${file}`, { headers });
      assert.equal(response.status, 200, file);
      const body = Buffer.from(await response.arrayBuffer());
      if (file.endsWith('.svg')) {
        assert.match(response.headers.get('content-type') ?? '', /^image\/svg\+xml/);
        assert.match(body.toString(), /^<svg /);
        continue;
      }
      assert.equal(response.headers.get('content-type'), 'image/png');
      assert.equal(body.subarray(1, 4).toString(), 'PNG');
      const size = Number(/(\d+)x\1/.exec(file)![1]);
      assert.deepEqual([body.readUInt32BE(16), body.readUInt32BE(20)], [size, size], `${file} is ${size}×${size}`);
    }
  });

  test('kernel_info names a CodeMirror mode both CodeMirror 5 and JupyterLab resolve to TypeScript', async () => {
    const info = await kernel.requestKernelInfo();
    assert.ok(info?.content.status === 'ok');
    assert.equal(info.content.language_info.codemirror_mode, 'application/typescript');
  });

  test('history with output gives (input, output) pairs; without, inputs', async () => {
    await execute(kernel, 'const answer = 6 * 7;\nanswer');
    await execute(kernel, 'console.log("shows no value")');
    const withOutput = await kernel.requestHistory({ output: true, raw: true, hist_access_type: 'tail', n: 2 });
    assert.ok(withOutput.content.status === 'ok');
    const [first, second] = withOutput.content.history;
    assert.deepEqual(first?.slice(2), [['const answer = 6 * 7;\nanswer', '42']]);
    assert.deepEqual(second?.slice(2), [['console.log("shows no value")', null]]);
    assert.equal((second?.[1] as number) - (first?.[1] as number), 1);

    const inputs = await kernel.requestHistory({ output: false, raw: true, hist_access_type: 'search', pattern: 'const answer*', n: 10, unique: true });
    assert.ok(inputs.content.status === 'ok');
    assert.deepEqual(
      inputs.content.history.map((entry) => entry[2]),
      ['const answer = 6 * 7;\nanswer'],
    );
  });

  test('`name?`, `?name` and `name??` answer with a page payload, as ipykernel does', async () => {
    await execute(kernel, 'const sg = {\n  map: function map(items: number[]) {\n    return items.map((x) => x * 2);\n  },\n};');
    for (const [code, detail] of [
      ['sg.map?', 0],
      ['?sg.map', 0],
      ['sg.map??', 1],
      ['  ?? sg . map  ', 1],
    ] as const) {
      const { reply, iopub } = await execute(kernel, code);
      assert.ok(reply.content.status === 'ok', code);
      assert.ok((reply.content.execution_count ?? 0) > 0, `${code} counts as an execution`);
      const payload = reply.content.payload as { source: string; data: Record<string, string>; start: number }[];
      assert.equal(payload.length, 1, code);
      assert.equal(payload[0]!.source, 'page');
      assert.equal(payload[0]!.start, 0);
      assert.match(payload[0]!.data['text/plain']!, /sg\.map/, code);
      if (detail === 1) assert.match(payload[0]!.data['text/plain']!, /x \* 2/, `${code} shows the source`);
      else assert.doesNotMatch(payload[0]!.data['text/plain']!, /x \* 2/, `${code} shows no source`);
      assert.deepEqual(outputsOf(iopub, 'execute_result'), [], `${code} shows no value`);
    }
    const missing = await execute(kernel, 'notDefinedAnywhere?');
    assert.ok(missing.reply.content.status === 'ok');
    assert.deepEqual(missing.reply.content.payload, []);
    assert.equal(streamText(missing.iopub, 'stdout'), 'Object `notDefinedAnywhere` not found.\n');
    // a conditional expression is code, not a help request
    const conditional = await execute(kernel, 'sg ? 1 : 2');
    assert.equal(resultOf(conditional), '1');
  });

  test('display.clear() sends clear_output, with wait when asked', async () => {
    const { reply, iopub } = await execute(kernel, 'console.log("first"); display.clear({ wait: true }); console.log("second"); display.clear();');
    assert.equal(reply.content.status, 'ok');
    const sequence = iopub
      .filter((message) => ['stream', 'clear_output'].includes(message.header.msg_type))
      .map((message) => (message.header.msg_type === 'stream' ? (message as KernelMessage.IStreamMsg).content.text : `clear(wait=${(message as KernelMessage.IClearOutputMsg).content.wait})`));
    assert.deepEqual(sequence, ['first\n', 'clear(wait=true)', 'second\n', 'clear(wait=false)']);
  });

  test('comms: comm_info answers, and a comm opened to a target the kernel lacks is closed by the kernel', async () => {
    const info = await kernel.requestCommInfo({ target_name: 'jupyter.widget' });
    assert.ok(info.content.status === 'ok');
    assert.deepEqual(info.content.comms, {});

    // what ipywidgets' front end does first: open jupyter.widget.control and ask for widget states
    const comm = kernel.createComm('jupyter.widget.control');
    const closed = new Promise<KernelMessage.ICommCloseMsg>((resolve) => (comm.onClose = resolve));
    await comm.open({}).done;
    const close = await closed;
    assert.equal(close.content.comm_id, comm.commId);
    assert.equal(kernel.hasComm(comm.commId), false);

    // the kernel goes on answering afterwards
    assert.equal(resultOf(await execute(kernel, '"still fine"')), "'still fine'");
  });
});
