/** `tsgather run NOTEBOOK`: executes a notebook headless through our kernel and prints a summary. */
import { Command } from 'commander';
import { stripVTControlCharacters } from 'node:util';
import { NotebookRunError, runNotebook, type RunNotebookResult } from '../kernel/run-notebook.js';
import { access, constants } from 'node:fs/promises';
import { seconds } from './arguments.js';
import { EXIT, fail } from './exit-codes.js';

function summary(result: RunNotebookResult): string {
  const status = result.errors.length === 0 ? 'ok' : `${result.errors.length} cell(s) failed`;
  return `${result.cells} code cells in ${(result.durationMs / 1000).toFixed(1)} s: ${status}\nexecuted notebook: ${result.outputPath}\n`;
}

export function runCommand(): Command {
  return new Command('run')
    .description('execute a notebook top to bottom through the tsgather kernel and write the executed copy')
    .argument('<notebook>', 'the .ipynb file to run')
    .option('-o, --output <file>', 'where to write the executed notebook (default: <name>.out.ipynb beside it)')
    .option('--timeout <seconds>', 'per-cell timeout', seconds, 600)
    .option('--allow-errors', 'run every cell even after one fails (exit code is still 1)')
    .action(async (notebook: string, opts: { output?: string; timeout: number; allowErrors?: boolean }, cmd: Command) => {
      try {
        await access(notebook, constants.R_OK);
      } catch (error) {
        cmd.error(`error: cannot read ${notebook}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { exitCode: EXIT.usage });
      }
      const onCell = (index: number, total: number) => process.stderr.write(`cell ${index + 1}/${total}\n`);
      try {
        const result = await runNotebook(notebook, { output: opts.output, timeoutMs: opts.timeout * 1000, allowErrors: opts.allowErrors, onCell });
        process.stdout.write(summary(result));
        if (result.errors.length > 0) process.exitCode = 1;
      } catch (error) {
        if (!(error instanceof NotebookRunError)) return fail(`${notebook}: ${(error as Error).message}`);
        process.stdout.write(summary(error.result));
        const first = error.result.errors[0]!;
        const traceback = first.traceback.join('\n');
        // The kernel colours tracebacks as ipykernel does; a log file or a pipe gets them plain.
        process.stderr.write(`${process.stderr.isTTY ? traceback : stripVTControlCharacters(traceback)}\n`);
        process.exitCode = 1;
      }
    });
}
