/** The headless runner: executes a notebook through our kernel, without Jupyter, and records outputs. */
import type { ICodeCell, IDisplayData, IError, IExecuteResult, INotebookContent, IStream } from '@jupyterlab/nbformat';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NotebookRunError, runNotebook } from '../kernel/run-notebook.js';
import { codeNotebook } from './helpers.js';

/** Code cells after a markdown one, which the runner must pass over. */
function notebook(...sources: string[]): INotebookContent {
  const content = codeNotebook(...sources);
  content.cells.unshift({ cell_type: 'markdown', id: 'intro', metadata: {}, source: '# test' });
  return content;
}

async function readCells(path: string): Promise<ICodeCell[]> {
  const executed = JSON.parse(await readFile(path, 'utf8')) as INotebookContent;
  return executed.cells.filter((cell): cell is ICodeCell => cell.cell_type === 'code');
}

describe('runNotebook', { timeout: 120_000 }, () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'tsgather-runner-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  test('records streams, results, updated displays and tagged job output', async () => {
    const input = join(dir, 'ok.ipynb');
    await writeFile(
      input,
      JSON.stringify(
        notebook(
          'const n: number = 6;\nconsole.log("n is", n);\nn * 7',
          'const progress = display.markdown("working");\nawait new Promise((r) => setTimeout(r, 10));\nprogress.update("**finished**");',
          'const sg = await spawnScatterGather([], { workers: 1 });\nawait sg.define("shout", (word: string) => { console.log(word.toUpperCase()); return word.length; });\nconst lengths = await sg.map("shout", [[["hello"]], [["notebook"]]]);\nawait sg.close();\nlengths',
        ),
      ),
    );
    const result = await runNotebook(input);
    assert.equal(result.outputPath, join(dir, 'ok.out.ipynb'));
    assert.deepEqual(result.errors, []);
    assert.equal(result.cells, 3);

    const [first, second, third] = await readCells(result.outputPath);
    assert.deepEqual(first.outputs, [
      { output_type: 'stream', name: 'stdout', text: 'n is 6\n' },
      { output_type: 'execute_result', data: { 'text/plain': '42' }, metadata: {}, execution_count: 1 },
    ]);
    assert.equal(first.execution_count, 1);
    assert.deepEqual((second.outputs[0] as IDisplayData).data, { 'text/markdown': '**finished**', 'text/plain': '**finished**' });
    assert.equal(second.outputs.length, 1);

    const jobText = third.outputs
      .filter((o): o is IStream => o.output_type === 'stream')
      .map((o) => o.text)
      .join('');
    assert.match(jobText, /^\[worker \d+@[^\]]+\] HELLO$/m);
    assert.match(jobText, /^\[worker \d+@[^\]]+\] NOTEBOOK$/m);
    const progress = third.outputs.find((o): o is IDisplayData => o.output_type === 'display_data');
    assert.match(String(progress?.data['text/plain']), /2\/2 done, 0 failed/);
    assert.equal((third.outputs.find((o) => o.output_type === 'execute_result') as IExecuteResult).data['text/plain'], '[ 5, 8 ]');
  });

  test('stops at the first error, writes the notebook, and rejects', async () => {
    const input = join(dir, 'failing.ipynb');
    const output = join(dir, 'failing-executed.ipynb');
    await writeFile(input, JSON.stringify(notebook('1 + 1', 'throw new RangeError("out of range")', '"never run"')));
    const error = await runNotebook(input, { output }).then(
      () => assert.fail('runNotebook resolved'),
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof NotebookRunError);
    assert.deepEqual(
      error.result.errors.map(({ cell, ename, evalue }) => ({ cell, ename, evalue })),
      [{ cell: 2, ename: 'RangeError', evalue: 'out of range' }],
    );
    const [, failed, skipped] = await readCells(output);
    assert.deepEqual(
      failed.outputs.map((o) => o.output_type),
      ['error'],
    );
    assert.equal((failed.outputs[0] as IError).ename, 'RangeError');
    assert.equal(skipped.execution_count, null);

    const lenient = await runNotebook(input, { output, allowErrors: true });
    assert.equal(lenient.cells, 3);
    assert.equal(lenient.errors.length, 1);
  });
});
