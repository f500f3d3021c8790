/**
 * The embedded compute server: forked by the caller beside the controller child (so both start up
 * at once), it dials the controller over ipc with CURVE keys made on the fly, as defence in depth
 * beside the socket's private directory.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { KEY_PAIR_ENV } from '../protocol/curve.js';
import { generateKeyPair, type KeyPair } from '../protocol/keys.js';
import type { LogLevel } from '../protocol/log-level.js';
import { ipcEndpoint } from '../protocol/transport.js';
import type { EmbeddedLink } from './launch.js';

const cliScript = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface EmbeddedServerOptions {
  workers: number;
  level: LogLevel;
  workerHeapMb?: number;
  workerMaxRssMb?: number;
  /** The controller's own key pair, when it has one; else one is made. */
  controllerKeys?: KeyPair;
}

export function forkEmbeddedServer(options: EmbeddedServerOptions): { process: ChildProcess; link: EmbeddedLink } {
  const endpoint = ipcEndpoint('ctl');
  const controllerKeys = options.controllerKeys ?? generateKeyPair();
  const serverKeys = generateKeyPair();
  const args = ['server', '--connect', endpoint, '--controller-key', controllerKeys.publicKey, '--workers', String(options.workers), '--name', `local-${os.hostname()}`, '--log-level', options.level];
  if (options.workerHeapMb) args.push('--worker-heap-mb', String(options.workerHeapMb));
  if (options.workerMaxRssMb) args.push('--worker-max-rss-mb', String(options.workerMaxRssMb));
  const child = fork(cliScript, args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [KEY_PAIR_ENV]: JSON.stringify(serverKeys) },
  });
  return { process: child, link: { endpoint, controllerKeys, serverKey: serverKeys.publicKey } };
}
