/**
 * Error outputs through a real Jupyter server: coloured as ipykernel's, with the offending cell
 * line marked; a job's error shows the defined function's lines in the cell that wrote it, and
 * none of tsgather's own frames, while the error object keeps the worker's whole stack.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import type { JupyterServer } from './jupyter-server.js';
import { execute, withKernel, outputsOf } from './jupyter-kernel-helpers.js';

const coloured = (entry: string) => entry !== stripVTControlCharacters(entry);

async function failing(kernel: Kernel.IKernelConnection, code: string): Promise<{ error: KernelMessage.IErrorMsg['content']; count: number; text: string }> {
  const { reply, iopub } = await execute(kernel, code);
  assert.equal(reply.content.status, 'error', JSON.stringify(reply.content));
  const [output] = outputsOf(iopub, 'error') as KernelMessage.IErrorMsg[];
  return { error: output!.content, count: Number(reply.content.execution_count), text: stripVTControlCharacters(output!.content.traceback.join('\n')) };
}

/** The lines of a context block: `----> 3 code` and the caret line under it. */
function markedLine(text: string, line: number): { code: string; caretColumn: number } {
  const lines = text.split('\n');
  const at = lines.findIndex((candidate) => new RegExp(`^\\s*----> ${line} `).test(candidate));
  assert.ok(at >= 0, `no line marked ${line} in:\n${text}`);
  const prefix = lines[at]!.indexOf(`----> ${line} `) + `----> ${line} `.length;
  return { code: lines[at]!.slice(prefix), caretColumn: lines[at + 1]!.indexOf('^') - prefix + 1 };
}

describe('error outputs', { timeout: 180_000 }, () => {
  let server: JupyterServer;
  let kernel: Kernel.IKernelConnection;

  withKernel((started) => ({ server, kernel } = started));

  test('a cell error is coloured and shows each cell frame with its line marked, the most recent call last', async () => {
    const code = 'const safe = 1;\nfunction inner(v: any) {\n  return v.boom.deeper;\n}\nconst v = await Promise.resolve(null); inner(v)';
    const { error, count, text } = await failing(kernel, code);
    assert.equal(error.ename, 'TypeError');
    assert.ok(error.traceback.every((entry) => typeof entry === 'string'));
    assert.ok(
      error.traceback.some((entry) => entry.includes('\x1b[0;31mTypeError\x1b[0m')),
      'the error name is red, as ipykernel has it',
    );
    assert.match(text, new RegExp(`Cell In\\[${count}\\], line 5\\n[\\s\\S]*Cell In\\[${count}\\], line 3, in inner\\n[\\s\\S]*TypeError: Cannot read properties of null \\(reading 'boom'\\)`));
    // the caret points into the line as written, although the await before it was rewritten
    const call = markedLine(text, 5);
    assert.equal(call.code, 'const v = await Promise.resolve(null); inner(v)');
    assert.equal(call.code.slice(call.caretColumn - 1), 'inner(v)');
    const access = markedLine(text, 3);
    assert.equal(access.code.slice(access.caretColumn - 1), 'boom.deeper;');
    assert.match(text, new RegExp(`at inner \\(cell-${count}\\.ts:3:12\\)\\n\\s+at cell-${count}\\.ts:5:40`));
    assert.doesNotMatch(text, /node:inspector|dist[\\/]kernel|__tsgather/);
  });

  test("an error thrown inside tsgather's caller library shows the cell's line, not the library's frames", async () => {
    const { text, count } = await failing(kernel, 'const pool = await spawnScatterGather(undefined, { workers: 1 });\npool.addJob("f", [1]);');
    assert.match(text, /TypeError: addJob\('f'\): item 0 must be/);
    assert.equal(markedLine(text, 2).code, 'pool.addJob("f", [1]);');
    assert.match(text, new RegExp(`at cell-${count}\\.ts:2:6`));
    assert.doesNotMatch(text, /dist[\\/]caller/);
  });

  test("a job's error shows the defined function's lines in its cell, not the worker's frames; the error keeps the whole stack", async () => {
    const defining = await execute(
      kernel,
      'await pool.define("f", function f(x) {\n  const y = x + 1;\n  return g(y);\n  function g(z) {\n    throw new Error("bad " + z);\n  }\n});\nawait pool.define("h", (x) => x.a.b);',
    );
    assert.equal(defining.reply.content.status, 'ok', JSON.stringify(defining.reply.content));
    const defined = defining.reply.content.execution_count;

    const { error, text } = await failing(kernel, 'await pool.submit("f", [1])');
    assert.equal(error.ename, 'Error');
    assert.equal(error.evalue, 'bad 2');
    assert.match(text, new RegExp(`Cell In\\[${defined}\\], line 3, in f \\(define\\('f'\\), on a worker\\)\\n[\\s\\S]*Cell In\\[${defined}\\], line 5, in g`));
    assert.equal(markedLine(text, 5).code, '    throw new Error("bad " + z);');
    assert.match(text, /error\.remoteStack/);
    assert.doesNotMatch(text, /dist[\\/]server|worker-runtime|runQueue|handleJobs|receiveLoop|node:internal/);

    const arrow = await failing(kernel, 'await pool.map("h", [[[{}]]])');
    assert.equal(markedLine(arrow.text, 8).code, 'await pool.define("h", (x) => x.a.b);');

    const kept = await execute(
      kernel,
      'const caught = await pool.submit("f", [1]).catch((e) => e);\n[caught.stack.split("\\n")[1].trim(), caught.stack.includes("runQueue"), caught.remoteStack.includes("runQueue")]',
    );
    const [result] = outputsOf(kept.iopub, 'execute_result') as KernelMessage.IExecuteResultMsg[];
    assert.equal(result?.content.data['text/plain'], "[ 'at g (define:f:5:11)', false, true ]");
  });

  test('in a cell whose enum needs code generated, the failing line is found through the source map', async () => {
    const { text } = await failing(kernel, 'enum Color { Red }\nconst picked = await Promise.resolve(Color.Red);\n  (null as any).hue');
    const marked = markedLine(text, 3);
    assert.equal(marked.code, '  (null as any).hue');
    assert.equal(marked.code.slice(marked.caretColumn - 1), 'hue');
  });

  test("a silent execution does not take the name of the cell before it: that cell's functions still show their own lines", async () => {
    const defining = await execute(kernel, 'function explode() {\n  return (null as any).fuse;\n}');
    const defined = Number(defining.reply.content.execution_count);
    const silent = await execute(kernel, 'const quiet = 1;\nquiet', { silent: true });
    assert.equal(silent.reply.content.status, 'ok');
    const { text } = await failing(kernel, 'explode()');
    assert.match(text, new RegExp(`Cell In\\[${defined}\\], line 2, in explode`));
    assert.equal(markedLine(text, 2).code, '  return (null as any).fuse;');
  });

  test('a syntax error the parser places shows the line with a caret', async () => {
    const { error, text } = await failing(kernel, 'const ok = 1;\nconst broken = (1 + ;');
    assert.equal(error.ename, 'SyntaxError');
    assert.ok(error.traceback.some(coloured));
    assert.match(text, /SyntaxError: /);
    const marked = markedLine(text, 2);
    assert.equal(marked.code, 'const broken = (1 + ;');
    assert.equal(marked.code.slice(marked.caretColumn - 1), ';');
  });
});
