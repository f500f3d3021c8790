#!/usr/bin/env node
/** The one command line: `tsgather server ...` and friends. */
import { Command } from 'commander';
import { serverCommand } from './server-command.js';

const program = new Command('tsgather').description('Notebook scatter/gather for TypeScript').showHelpAfterError();
program.addCommand(serverCommand());
await program.parseAsync(process.argv);

