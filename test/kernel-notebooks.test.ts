/** Every notebook in notebooks/ runs top to bottom under Jupyter's own executor (nbconvert/nbclient) with our kernel. */
import type { INotebookContent } from '@jupyterlab/nbformat';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { jupyterEnvironment, type JupyterEnvironment } from './jupyter-server.js';

const NOTEBOOKS = resolve(import.meta.dirname, '..', '..', 'notebooks');
const notebooks = readdirSync(NOTEBOOKS).filter((name) => name.endsWith('.ipynb') && !name.endsWith('.out.ipynb'));

describe('notebooks under nbconvert --execute', { timeout: 300_000 }, () => {
  let environment: JupyterEnvironment;
  before(async () => (environment = await jupyterEnvironment()));
  after(() => environment?.remove());

  for (const name of notebooks) {
    test(name, async () => {
      const outputDir = join(environment.root, 'executed');
      await promisify(execFile)('jupyter', ['nbconvert', '--to', 'notebook', '--execute', '--ExecutePreprocessor.timeout=240', '--output-dir', outputDir, join(NOTEBOOKS, name)], {
        env: environment.env,
        timeout: 280_000,
      }).catch((error: Error & { stderr?: string }) => assert.fail(`nbconvert failed on ${name}:\n${error.stderr ?? error.message}`));
      const executed = JSON.parse(await readFile(join(outputDir, name), 'utf8')) as INotebookContent;
      const code = executed.cells.filter((cell) => cell.cell_type === 'code');
      // Executed for real: the kernel's cells wrote something (streams, values, displays).
      assert.ok(
        code.some((cell) => (cell.outputs as unknown[]).length > 0),
        `${name}: no code cell has output`,
      );
      for (const [index, cell] of code.entries()) {
        assert.equal(typeof cell.execution_count, 'number', `code cell ${index} was executed`);
        const errors = (cell.outputs as Array<{ output_type: string }>).filter((output) => output.output_type === 'error');
        assert.deepEqual(errors, [], `code cell ${index} has no error output`);
      }
    });
  }
});
