/** Server addresses as users write them: `tcp://host:5555/function?workers=8`. */
export interface ServerAddress {
  /** The ZeroMQ endpoint, without path or query. */
  endpoint: string;
  /** Workers to ask the server for, if given. */
  workers?: number;
  /** A preloaded function the path names: the default for addJob calls that give no name. */
  fn?: string;
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
  return address;
}
