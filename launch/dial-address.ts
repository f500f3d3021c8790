/**
 * The address of this machine that compute servers dial: given (`address`), that of a network
 * interface (`interface`, e.g. 'ib0'), or else the host name's address when it is not a loopback
 * one, else the first address of a non-loopback interface. IPv4 first.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import os from 'node:os';

export class DialAddressError extends Error {
  override name = 'DialAddressError';
}

function interfaceAddress(name: string): string {
  const interfaces = os.networkInterfaces();
  const addresses = interfaces[name];
  if (!addresses) throw new DialAddressError(`network interface '${name}' does not exist here (interfaces: ${Object.keys(interfaces).join(', ')})`);
  const found = addresses.find((a) => a.family === 'IPv4') ?? addresses.find((a) => a.family === 'IPv6' && !a.address.startsWith('fe80'));
  if (!found) throw new DialAddressError(`network interface '${name}' has no address`);
  return found.address;
}

/** An IP address for `listen` and for the servers to dial. */
export async function dialAddress(options: { address?: string; interface?: string }): Promise<string> {
  if (options.address && options.interface) throw new DialAddressError('give address or interface, not both');
  if (options.address) {
    if (isIP(options.address)) return options.address;
    try {
      return (await lookup(options.address)).address;
    } catch (error) {
      throw new DialAddressError(`address '${options.address}' does not resolve: ${(error as Error).message}`);
    }
  }
  if (options.interface) return interfaceAddress(options.interface);
  try {
    const { address } = await lookup(os.hostname());
    if (!address.startsWith('127.') && address !== '::1') return address;
  } catch {
    // no name service entry for the host: fall through
  }
  for (const addresses of Object.values(os.networkInterfaces())) {
    const found = addresses?.find((a) => !a.internal && a.family === 'IPv4');
    if (found) return found.address;
  }
  throw new DialAddressError('this machine has no non-loopback address for servers to dial: give address or interface');
}

/** tcp://host:port with an IPv6 host bracketed. */
export function tcpUrl(host: string, port: number | string): string {
  return `tcp://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** A bound endpoint as servers dial it: a wildcard host becomes `address`. */
export function dialUrl(listening: string, address: string): string {
  const match = /^tcp:\/\/(.+):(\d+)$/.exec(listening);
  if (!match) throw new DialAddressError(`the controller listens on ${listening}, which servers on other machines cannot dial (a tcp:// address is needed)`);
  const host = match[1]!.replace(/^\[|\]$/g, '');
  return ['0.0.0.0', '*', '::', '127.0.0.1', 'localhost', '::1'].includes(host) ? tcpUrl(address, match[2]!) : listening;
}
