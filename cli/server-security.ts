/** The server's key options, turned into what ComputeServer takes. Errors name files, never keys. */
import type { Command } from 'commander';
import { positiveNumber } from './arguments.js';
import { KeyError, publicKeyArgument, readKeyPairFile, readPublicKeysFile, takeKeyPairFromEnv, KEY_PAIR_ENV, type KeyPair } from '../protocol/index.js';

export interface ServerSecurityFlags {
  keyFile?: string;
  authorizedKeys?: string;
  controllerKey?: string;
  insecure?: boolean;
  maxMessageMb?: number;
}

export interface ServerSecurity {
  keyPair: KeyPair | undefined;
  authorizedKeys: string[] | undefined;
  controllerKey: string | undefined;
  insecure: boolean;
  maxMessageBytes: number | undefined;
}

export function addServerSecurityOptions(command: Command): Command {
  return command
    .option('--key-file <file>', "this server's secret key file (from `tsgather keys generate`; mode 0600): encrypts every controller link")
    .option('--authorized-keys <file>', 'public keys of the controllers admitted on --bind, one per line, # comments')
    .option('--controller-key <key|file>', 'public key (or .pub file) of the controller that --connect dials')
    .option('--insecure', 'allow --bind/--connect beyond this machine without keys (anyone who can reach the port can run code)')
    .option('--max-message-mb <mb>', 'largest message accepted from a controller; a bigger one is dropped with its connection (default 1024)', positiveNumber);
}

/** Reads key files (or, for a server a controller forked, the key pair it passed in the environment). */
export function resolveServerSecurity(flags: ServerSecurityFlags): ServerSecurity {
  const fromParent = takeKeyPairFromEnv();
  try {
    return {
      keyPair: flags.keyFile ? readKeyPairFile(flags.keyFile) : fromParent,
      authorizedKeys: flags.authorizedKeys ? readPublicKeysFile(flags.authorizedKeys) : undefined,
      controllerKey: flags.controllerKey ? publicKeyArgument(flags.controllerKey, '--controller-key') : undefined,
      insecure: flags.insecure ?? false,
      maxMessageBytes: flags.maxMessageMb ? Math.floor(flags.maxMessageMb * 1024 * 1024) : undefined,
    };
  } catch (error) {
    if (error instanceof KeyError) throw error;
    throw new KeyError(`cannot read keys: ${(error as Error).message}`);
  }
}

export { KEY_PAIR_ENV };
