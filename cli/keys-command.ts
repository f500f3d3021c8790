/** `tsgather keys`: make CURVE key pairs for servers and controllers, and show a key file's public half. */
import { Command } from 'commander';
import { fingerprint, KeyError, keyToHex, readKeyPairFile, readPublicKeysFile, writeKeyPair } from '../protocol/index.js';
import { EXIT, fail } from './exit-codes.js';

function describe(publicKey: string): string {
  return `public key  ${publicKey}\nURL form    ?key=${keyToHex(publicKey)}\nfingerprint ${fingerprint(publicKey)}\n`;
}

function guarded(action: () => void): void {
  try {
    action();
  } catch (error) {
    if (!(error instanceof KeyError)) throw error;
    fail(error.message, EXIT.usage);
  }
}

export function keysCommand(): Command {
  const keys = new Command('keys').description('CURVE key pairs: a server needs one, and so does a controller that dials a server or lets servers dial in');
  keys
    .command('generate')
    .description('write NAME.key (secret, mode 0600) and NAME.pub (public) into DIR')
    .requiredOption('--out <dir>', 'directory for the key files (made with mode 0700 if missing)')
    .option('--name <name>', 'file name stem, and the label in the .pub file', 'tsgather')
    .action((opts: { out: string; name: string }) =>
      guarded(() => {
        const { secretFile, publicFile, pair } = writeKeyPair(opts.out, opts.name);
        process.stdout.write(`secret key  ${secretFile} (mode 0600: keep it on this machine)\npublic file ${publicFile}\n${describe(pair.publicKey)}`);
      }),
    );
  keys
    .command('show <file>')
    .description('print the public key of a .key or .pub file, also in the URL-safe hex form for ?key=')
    .action((file: string) =>
      guarded(() => {
        const publicKey = file.endsWith('.key') ? readKeyPairFile(file).publicKey : readPublicKeysFile(file)[0];
        if (!publicKey) throw new KeyError(`${file} holds no public key`);
        process.stdout.write(describe(publicKey));
      }),
    );
  return keys;
}
