#!/usr/bin/env node
/** The one command line: `tsgather server ...` and friends. */
import { Command } from 'commander';
import { kernelCommand } from './kernel-command.js';
import { runCommand } from './run-command.js';
import { serverCommand } from './server-command.js';

const program = new Command('tsgather').description('Notebook scatter/gather for TypeScript').showHelpAfterError();
program.addCommand(serverCommand());
program.addCommand(runCommand());
program.addCommand(kernelCommand());
await program.parseAsync(process.argv);

