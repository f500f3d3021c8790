/**
 * Closures captured from the notebook (docs/definitions.md), through a real Jupyter server and the
 * kernel in a notebook directory: a function defined in one cell takes the helpers and constants
 * of earlier cells (TypeScript annotations and all); a helper redefined later gives it a new
 * version; what cannot travel is refused at define naming it and its line; imports resolve from
 * the notebook's directory, a cell's imports travel as imports, and a missing package names the server.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startJupyterServer, type JupyterServer } from './jupyter-server.js';
import { execute, streamText } from './jupyter-kernel-helpers.js';

function write(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

describe('kernel: definitions take the notebook with them', { timeout: 180_000 }, () => {
  let server: JupyterServer;
  let kernel: Kernel.IKernelConnection;

  /** Runs a cell that must succeed; returns what it printed. */
  const run = async (code: string): Promise<string> => {
    const { reply, iopub } = await execute(kernel, code);
    const error = reply.content as KernelMessage.IReplyErrorContent;
    assert.equal(reply.content.status, 'ok', `cell failed: ${error.ename}: ${error.evalue}\n${code}`);
    return streamText(iopub, 'stdout');
  };

  before(async () => {
    server = await startJupyterServer();
    const notebookDir = path.join(server.root, 'project');
    write(path.join(notebookDir, 'mylib.mjs'), 'export const triple = (x) => x * 3;\n');
    write(path.join(notebookDir, 'node_modules', 'nbpkg', 'package.json'), JSON.stringify({ name: 'nbpkg', type: 'module', exports: './index.js' }));
    write(path.join(notebookDir, 'node_modules', 'nbpkg', 'index.js'), "export default function shout(s) { return s.toUpperCase() + '!'; }\n");
    // `path` (the Jupyter REST API's): the kernel starts in the notebook's directory, as it does for a notebook there
    kernel = await server.kernels.startNew({ name: 'tsgather', path: 'project' } as { name: string });
    await kernel.info;
    await run('const sg = await spawnScatterGather([], { workers: 1 });');
  });

  after(async () => {
    await execute(kernel, 'await sg.close()').catch(() => undefined);
    await kernel?.shutdown().catch(() => undefined);
    kernel?.dispose();
    await server?.stop();
  });

  test('a function takes the helpers and constants of earlier cells; a helper redefined later gives it a new version', async () => {
    await run('const SCALE = 3;\nfunction helper(x: number): number { return x * SCALE }');
    assert.equal(await run("await sg.define('f', (x: number) => helper(x) + 1);\nconsole.log(JSON.stringify(await sg.map('f', [[[1]], [[2]]])))"), '[4,7]\n');
    await run('function helper(x: number): number { return x * 100 }');
    assert.equal(await run("const [r] = await sg.mapResults('f', [[[1]]]);\nconsole.log(JSON.stringify([r.value, r.version]))"), '[101,2]\n');
    // redefined in the same cell as the job call: the call defines it again first
    assert.equal(await run("const SCALE = 10;\nfunction helper(x: number): number { return x * SCALE }\nconsole.log(JSON.stringify(await sg.map('f', [[[1]]])))"), '[11]\n');
    // addJob cannot wait for a definition: the cell that redefined the helper defined f again as it ended
    await run('function helper(x: number): number { return x * 7 }');
    assert.equal(await run("sg.addJob('f', [[[1]]]);\nconst [late] = await sg.waitForResult({ all: true });\nconsole.log(late.value, late.version)"), '8 4\n');
    // a cell's binding that shadows a global is the cell's, and travels
    assert.equal(await run("const URL = 'https://example.org';\nawait sg.define('u', () => URL.length);\nconsole.log(await sg.submit('u'))"), '19\n');
  });

  test('a socket is refused at define, naming it and the line that uses it', async () => {
    const { reply } = await execute(kernel, "const net = await import('node:net');\nconst sock = new net.Socket();\nawait sg.define('s', (x: string) => {\n  return sock.write(x);\n});");
    assert.equal(reply.content.status, 'error');
    const error = reply.content as KernelMessage.IReplyErrorContent;
    assert.equal(error.ename, 'CaptureError');
    assert.match(error.evalue, /^define\('s'\): 'sock' \(used at line 2 of s: "return sock\.write\(x\);"\) cannot travel to the workers: it is a Socket/);
  });

  test('a captured value rebound to one that cannot travel: the cell says the function was not defined again', async () => {
    await run("const limit = 5;\nawait sg.define('capped', (x: number) => Math.min(x, limit));");
    const { reply, iopub } = await execute(kernel, 'const limit = new (await import("node:net")).Socket();');
    assert.equal(reply.content.status, 'ok');
    assert.match(streamText(iopub, 'stderr'), /'limit' changed, but 'capped' could not be defined again with the new value: .*'limit' .* it is a Socket/);
  });

  test("imports resolve from the notebook's directory; a cell's imports travel as imports", async () => {
    assert.equal(await run("await sg.define('lib', async (x: number) => (await import('./mylib.mjs')).triple(x));\nconsole.log(await sg.submit('lib', [2]))"), '6\n');
    assert.equal(
      await run("import { triple } from './mylib.mjs';\nimport shout from 'nbpkg';\nawait sg.define('both', (x: number) => shout(String(triple(x))));\nconsole.log(await sg.submit('both', [3]))"),
      '9!\n',
    );
  });

  test('a package missing on the server is an error naming it and the server', async () => {
    const out = await run(
      "await sg.define('missing', async () => import('not-installed-anywhere'));\nconst [bad] = await sg.mapResults('missing', [[[]]]);\nconsole.log(bad.error.name, bad.error.message)",
    );
    assert.match(out, /^ModuleNotFoundError cannot import 'not-installed-anywhere' on server 'local-[^']+' \(host [^)]+\): not found from \S+\/project \(the caller's directory\)/);
  });
});
