#!/usr/bin/env node
/** The one command line: `tsgather server ...` and friends. */
import { Command, CommanderError } from 'commander';
import { EXIT } from './exit-codes.js';

const program = new Command('tsgather').description('Notebook scatter/gather for TypeScript').enablePositionalOptions();
// Each command's module is imported only when it is the one asked for: `server` (which every
// embedded cluster forks) must not pay for loading the kernel, the notebook runner and the rest.
const commands: Record<string, () => Promise<Command>> = {
  server: async () => (await import('./server-command.js')).serverCommand(),
  run: async () => (await import('./run-command.js')).runCommand(),
  kernel: async () => (await import('./kernel-command.js')).kernelCommand(),
  keys: async () => (await import('./keys-command.js')).keysCommand(),
  bench: async () => (await import('./bench-command.js')).benchCommand(),
  cluster: async () => (await import('./cluster-command.js')).clusterCommand(),
  sessions: async () => (await import('./sessions-command.js')).sessionsCommand(),
};
const asked = process.argv[2];
const wanted = asked !== undefined && Object.hasOwn(commands, asked) ? [commands[asked]!] : Object.values(commands);
for (const command of await Promise.all(wanted.map((load) => load()))) program.addCommand(command);

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
