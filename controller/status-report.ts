/** The controller's status() answer, built from the cluster's state, the queues and the ledger. */
import type { ServerStatus, Status } from '../protocol/status.js';
import type { Cluster } from './cluster.js';
import type { JobLedger } from './job-ledger.js';

export interface StatusSources {
  controllerId: string;
  listening: string[];
  cluster: Cluster;
  /** Jobs waiting for a worker (Scheduler.waiting), and of those, ones no server in session can take (Scheduler.unplaceable). */
  waiting: number;
  unplaceable: number;
  /** Values pushed to every worker. */
  shared?: Status['shared'];
  ledger: JobLedger;
}

export function buildStatus({ controllerId, listening, cluster, waiting, unplaceable, ledger, shared = [] }: StatusSources, now = Date.now()): Status {
  const servers = [...cluster.links.values()].flatMap((link): ServerStatus[] => {
    if (!link.server) return link.url ? [{ url: link.url, connected: false, refused: link.refused, handshakeError: link.handshakeError }] : [];
    const { info, workers, lastSeen, spares, sessions } = link.server;
    return [
      {
        id: info.id,
        host: info.host,
        url: link.url,
        connected: true,
        lastSeenMs: now - lastSeen,
        functions: info.functions,
        labels: info.labels ?? [],
        sessions,
        spares,
        workers: [...workers.values()].map((s) => ({ w: s.w, pid: s.pid, busy: s.inflightCount > 0, inflight: s.inflightCount, done: s.done, failed: s.failed, upMs: now - s.upAt })),
      },
    ];
  });
  const { counters } = ledger;
  return {
    controller: controllerId,
    listening,
    servers,
    workers: servers.reduce((n, s) => n + (s.workers?.length ?? 0), 0),
    queued: waiting,
    unplaceable,
    inflight: ledger.outstanding - waiting,
    done: counters.done,
    failed: counters.failed,
    retried: counters.retried,
    timedOut: counters.timedOut,
    duplicatesDropped: counters.duplicates,
    ratePerSec: ledger.ratePerSec(now),
    definitions: [...cluster.definitions.values()].map(({ name, version }) => ({ name, version })),
    shared,
  };
}
