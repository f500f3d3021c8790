/** Jupyter connection files: what a kernel binds and a client dials. */
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';

export type Channel = 'shell' | 'iopub' | 'stdin' | 'control' | 'hb';
export const CHANNELS: readonly Channel[] = ['shell', 'iopub', 'stdin', 'control', 'hb'];

export interface ConnectionInfo {
  transport: 'tcp' | 'ipc';
  ip: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  key: string;
  signature_scheme: string;
  kernel_name?: string;
}

export async function readConnectionFile(path: string): Promise<ConnectionInfo> {
  const info = JSON.parse(await readFile(path, 'utf8')) as ConnectionInfo;
  for (const channel of CHANNELS) {
    if (!Number.isInteger(info[`${channel}_port`])) throw new Error(`${path}: no ${channel}_port`);
  }
  return {
    ...info,
    transport: info.transport ?? 'tcp',
    ip: info.ip ?? '127.0.0.1',
    key: info.key ?? '',
    signature_scheme: info.signature_scheme ?? 'hmac-sha256',
  };
}

export async function writeConnectionFile(path: string, info: ConnectionInfo): Promise<void> {
  await writeFile(path, JSON.stringify(info, null, 2), { mode: 0o600 });
}

/** The ZeroMQ endpoint of one channel; ipc endpoints follow jupyter_client's `<ip>-<port>` naming. */
export function endpoint(info: ConnectionInfo, channel: Channel): string {
  const port = info[`${channel}_port`];
  return info.transport === 'ipc' ? `ipc://${info.ip}-${port}` : `tcp://${info.ip}:${port}`;
}

/** Ports the OS reports free right now (the usual connection-file race applies, as in jupyter_client). */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, host, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
