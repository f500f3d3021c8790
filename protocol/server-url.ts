import { normalizeKey } from './index.js';

/** Server addresses as users write them: `tcp://host:5555/function?workers=8`. */
export interface ServerAddress {
  /** The ZeroMQ endpoint, without path or query. */
  endpoint: string;
  /** Workers to ask the server for, if given. */
  workers?: number;
  /** A preloaded function the path names: the default for addJob calls that give no name. */
  fn?: string;
  /** The server's public key (Z85) from `?key=`: 64 hex digits, or Z85 percent-encoded (Z85 has &, %, + and ?). */
  serverKey?: string;
}

export function parseServerUrl(url: string): ServerAddress {
  const match = /^(tcp|ipc):\/\/([^/?]+)(\/[^?]*)?(\?.*)?$/.exec(url);
  if (!match) throw new TypeError(`server URL '${url}' is not of the form tcp://host:port[/function][?workers=N]`);
  const [, scheme, authority, pathPart, query] = match;
  const address: ServerAddress = { endpoint: `${scheme}://${authority}` };
  if (scheme === 'ipc') address.endpoint = `ipc://${authority}${pathPart ?? ''}`;
  else if (pathPart && pathPart.length > 1) address.fn = decodeURIComponent(pathPart.slice(1));
  const params = new URLSearchParams(query ?? '');
  const workers = params.get('workers');
  if (workers !== null) {
    const n = Number(workers);
    if (!Number.isInteger(n) || n < 1) throw new TypeError(`server URL '${url}': workers must be a positive whole number`);
    address.workers = n;
  }
  // Read raw rather than through URLSearchParams, which would turn a Z85 '+' into a space.
  const key = /[?&]key=([^&]*)/.exec(query ?? '')?.[1];
  if (key !== undefined) {
    let text: string;
    try {
      text = decodeURIComponent(key);
    } catch {
      throw new TypeError(`server URL '${url}': key is not valid percent-encoding (give the 64-digit hex form)`);
    }
    try {
      address.serverKey = normalizeKey(text, 'key');
    } catch {
      throw new TypeError(`server URL '${url}': key must be 64 hex digits or percent-encoded Z85 (tsgather keys show FILE prints it)`);
    }
  }
  return address;
}
