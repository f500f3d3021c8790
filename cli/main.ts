#!/usr/bin/env node
/** The one command line: `tsgather server ...` and friends. */
import { Command, CommanderError } from 'commander';
import { benchCommand } from './bench-command.js';
import { clusterCommand } from './cluster-command.js';
import { EXIT } from './exit-codes.js';
import { kernelCommand } from './kernel-command.js';
import { keysCommand } from './keys-command.js';
import { runCommand } from './run-command.js';
import { serverCommand } from './server-command.js';

const program = new Command('tsgather').description('Notebook scatter/gather for TypeScript').enablePositionalOptions();
program.addCommand(serverCommand());
program.addCommand(runCommand());
program.addCommand(kernelCommand());
program.addCommand(keysCommand());
program.addCommand(benchCommand());
program.addCommand(clusterCommand());

/** Every command: usage errors exit 2 with help hinted; --help and --version exit 0. */
function strict(command: Command): void {
  command.showHelpAfterError('(add --help for usage)').exitOverride();
  for (const sub of command.commands) strict(sub);
}
strict(program);
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (!(error instanceof CommanderError)) {
    // An unexpected failure: one clear line (the stack too when debugging), exit 1.
    const debug = ['debug', 'trace'].includes(process.env.TSGATHER_LOG_LEVEL ?? '');
    process.stderr.write(`error: ${debug ? ((error as Error).stack ?? String(error)) : ((error as Error).message ?? String(error))}\n`);
    process.exit(EXIT.failure);
  }
  const benign = ['commander.helpDisplayed', 'commander.help', 'commander.version', 'commander.executeSubCommandAsync'].includes(error.code);
  process.exitCode = benign ? EXIT.ok : error.exitCode === 1 ? EXIT.usage : error.exitCode;
}

