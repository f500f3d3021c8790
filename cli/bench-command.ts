/** `tsgather bench [args...]`: runs the benchmark suite (bench/main.ts), passing its arguments through. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { fail } from './exit-codes.js';

const benchMain = fileURLToPath(new URL('../bench/main.js', import.meta.url));

export function benchCommand(): Command {
  return new Command('bench')
    .description('measure tsgather beside a raw ZeroMQ pipeline, IPython Parallel and Dask; writes bench/results.json')
    .argument('[args...]', 'passed to the bench: --quick, --workers N, --runs N, --only raw,engine,..., --no-python')
    .allowUnknownOption()
    .helpOption('-h, --help', 'show this help (the bench flags are listed above)')
    .action(async (args: string[]) => {
      if (!existsSync(benchMain)) return fail(`the bench is not built (${benchMain} missing); run npm run build in a source checkout`);
      const child = spawn(process.execPath, [benchMain, ...args], { stdio: 'inherit' });
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
      process.exitCode = code ?? (signal ? 128 + 15 : 1);
    });
}
