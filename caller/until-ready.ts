/** spawnScatterGather's wait for start-up: the controller, then every server with its workers. */
import { parseServerUrl } from '../protocol/server-url.js';
import type { ScatterGather } from './scatter-gather.js';

/** What start-up waits for: the dialled servers (by endpoint, with the workers asked for), the embedded server's workers, and for how long. */
export interface Readiness {
  servers: Array<{ url: string; workers?: number }>;
  embeddedWorkers: number | undefined;
  timeoutMs: number;
}

/** Waits for the controller, then for every server to be up with its workers (all of them for the embedded one). */
export function untilReady(sg: ScatterGather, { servers, embeddedWorkers, timeoutMs }: Readiness): Promise<void> {
  // Start-up keeps the process alive and reads each event as it comes; released the moment it is over.
  const release = sg.hold();
  return new Promise((resolve, reject) => {
    const workersByServer = new Map<string, number>();
    const urlServer = new Map<string, string>();
    /** How many workers each server said it has; a server may grant fewer than a URL asked for. */
    const grantedByServer = new Map<string, number>();
    /** How many were up when it joined: a running server's workers, all announced at once, so a scatter right after start-up splits over all of them. */
    const upByServer = new Map<string, number>();
    let controllerReady = false;
    let embeddedServer: string | undefined;
    /** Why a server's security handshake keeps failing, by endpoint: said if it never comes up. */
    const handshakeErrors = new Map<string, string>();
    const check = () => {
      if (!controllerReady) return;
      const urlsUp = servers.every(({ url, workers }) => {
        const id = urlServer.get(url);
        return id !== undefined && (workersByServer.get(id) ?? 0) >= Math.min(workers ?? Math.max(1, upByServer.get(id) ?? 0), grantedByServer.get(id) ?? Infinity);
      });
      const embeddedUp = embeddedWorkers === undefined || (embeddedServer !== undefined && (workersByServer.get(embeddedServer) ?? 0) >= embeddedWorkers);
      if (urlsUp && embeddedUp) finish();
    };
    const onEvent = ({ kind, detail }: { kind: string; detail: Record<string, unknown> }) => {
      if (kind === 'server-up') {
        const url = detail.url as string | undefined;
        if (typeof detail.workers === 'number') grantedByServer.set(detail.server as string, detail.workers);
        if (typeof detail.up === 'number') upByServer.set(detail.server as string, detail.up);
        if (url) urlServer.set(parseServerUrl(url).endpoint, detail.server as string);
        else embeddedServer ??= detail.server as string;
      } else if (kind === 'worker-up') {
        workersByServer.set(detail.server as string, (workersByServer.get(detail.server as string) ?? 0) + 1);
      } else if (kind === 'server-handshake-failed' && detail.url) {
        handshakeErrors.set(parseServerUrl(detail.url as string).endpoint, String(detail.reason));
      } else if (kind === 'server-refused') {
        return finish(new Error(`server ${String(detail.url ?? detail.server)} refused the connection: ${String(detail.reason)}`));
      } else if (kind === 'controller-failed') {
        return finish(new Error(`the controller could not start: ${String(detail.reason)}`));
      } else if (kind === 'embedded-server-failed') {
        return finish(new Error(`the embedded compute server could not start: ${String(detail.reason)}`));
      }
      check();
    };
    const onReady = () => {
      controllerReady = true;
      check();
    };
    const onExit = () => finish(new Error('the controller process exited during start-up; see its output above'));
    const timer = setTimeout(() => {
      const missing = servers.filter(({ url }) => !urlServer.has(url)).map(({ url }) => url);
      const why = missing.map((url) => (handshakeErrors.has(url) ? `${url} (${handshakeErrors.get(url)})` : url));
      finish(new Error(`scatter/gather did not come up within ${timeoutMs} ms${why.length ? `: no answer from ${why.join(', ')}` : ''}`));
    }, timeoutMs);
    const finish = (error?: Error) => {
      release();
      clearTimeout(timer);
      sg.off('event', onEvent).off('ready', onReady).off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    sg.on('event', onEvent).on('ready', onReady).on('exit', onExit);
  });
}
