/**
 * A process of simulated servers (sim-server.ts), driven over its IPC channel by fleet.ts: it
 * starts the servers it is given, each dialling every controller, makes one go quiet when told,
 * and reports what it lost and how far it fell behind. It exits when its parent goes.
 */
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { SimServer } from './sim-server.js';
import { Ticker } from './ticker.js';
import type { SimRequest, SimReply } from './sim-messages.js';

// Hundreds of servers' sockets, each with a monitor (two more sockets) for its connection events: past libzmq's 1,023 by default.
zmq.context.maxSockets = 65_536;

const module = fileURLToPath(new URL('./sim-functions.js', import.meta.url));
const ticker = new Ticker();
const servers = new Map<string, SimServer>();
let lagMs = 0;

const reply = (message: SimReply): void => {
  process.send?.(message);
};

async function handle(request: SimRequest): Promise<void> {
  switch (request.t) {
    case 'start': {
      const created = request.servers.map(
        ({ id, workers, labels }) => new SimServer({ id, workers, labels, module, reforkMs: request.reforkMs, curve: request.curve, ticker, lagged: (ms) => (lagMs += ms) }),
      );
      for (const server of created) servers.set(server.info.id, server);
      // Workers first (they load the functions module), then every server dials at once: a connect storm.
      await Promise.all(created.map((server) => server.prepare()));
      const endpoints: Record<string, string> = {};
      for (const [i, server] of created.entries()) if (request.servers[i]!.bind) endpoints[server.info.id] = await server.listen();
      const dialAt = Date.now();
      for (const [i, server] of created.entries()) if (!request.servers[i]!.bind) server.connect(request.controllers);
      return reply({ t: 'started', seq: request.seq, dialAt, workers: created.reduce((n, s) => n + s.workerCount, 0), endpoints });
    }
    case 'silence': {
      const server = servers.get(request.id);
      server?.silence();
      return reply({ t: 'silenced', seq: request.seq, at: Date.now(), held: server?.lost.length ?? 0 });
    }
    case 'lost':
      return reply({ t: 'lost', seq: request.seq, ids: servers.get(request.id)?.lost ?? [] });
    case 'lag':
      return reply({ t: 'lag', seq: request.seq, lagMs });
    case 'stop':
      for (const server of servers.values()) server.close();
      reply({ t: 'stopped', seq: request.seq });
      setTimeout(() => process.exit(0), 50);
      return;
  }
}

process.on('message', (request: SimRequest) => {
  handle(request).catch((error: Error) => reply({ t: 'failed', seq: request.seq, reason: error.stack ?? error.message }));
});
process.on('disconnect', () => process.exit(0));
