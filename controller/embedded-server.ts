/**
 * The embedded compute server: forked by the controller child on loopback, dialling back in over
 * ipc with CURVE keys made on the fly (an ipc socket file is only as private as the umask made it).
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { KEY_PAIR_ENV } from '../protocol/curve.js';
import { generateKeyPair, type KeyPair } from '../protocol/keys.js';
import type { LogLevel } from '../protocol/log-level.js';
import { ipcEndpoint } from '../protocol/transport.js';
import type { ControllerLaunch } from './launch.js';

const cliScript = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface EmbeddedServer {
  process: ChildProcess;
  /** Where the controller must listen for it. */
  endpoint: string;
  /** The controller's key pair on that link, and the server's public key. */
  controllerKeys: KeyPair;
  serverKey: string;
}

export function forkEmbeddedServer(launch: ControllerLaunch, workers: number, level: LogLevel): EmbeddedServer {
  const endpoint = ipcEndpoint('ctl');
  const controllerKeys = launch.security?.keyPair ?? generateKeyPair();
  const serverKeys = generateKeyPair();
  const args = ['server', '--connect', endpoint, '--controller-key', controllerKeys.publicKey, '--workers', String(workers), '--name', `local-${os.hostname()}`, '--log-level', level];
  if (launch.workerHeapMb) args.push('--worker-heap-mb', String(launch.workerHeapMb));
  if (launch.workerMaxRssMb) args.push('--worker-max-rss-mb', String(launch.workerMaxRssMb));
  const child = fork(cliScript, args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [KEY_PAIR_ENV]: JSON.stringify(serverKeys) },
  });
  return { process: child, endpoint, controllerKeys, serverKey: serverKeys.publicKey };
}
