/**
 * Limits on peers that are not in session (never greeted, or garbage senders), shared by the
 * controller and the server: their sockets are shared with real peers, so one bad peer must not
 * be able to fill a pipe or memory.
 */

/** Answers (and caller events) a peer out of session gets; after these it is ignored. */
export const MAX_COMPLAINTS = 5;
/** Peers remembered while out of session; the oldest are forgotten past this. */
export const MAX_IDLE_PEERS = 256;

/** Forgets the oldest idle peers (in insertion order) until there is room for one more. */
export function forgetIdlePeers<K, V>(peers: Map<K, V>, isIdle: (peer: V) => boolean): void {
  let idle = 0;
  for (const peer of peers.values()) if (isIdle(peer)) idle++;
  for (const [key, peer] of peers) {
    if (idle < MAX_IDLE_PEERS) break;
    if (!isIdle(peer)) continue;
    peers.delete(key);
    idle--;
  }
}

/** Counts one more answer to a peer out of session; false once it has had its few (MAX_COMPLAINTS). */
export function mayComplainTo(peer: { complaints?: number }): boolean {
  peer.complaints = (peer.complaints ?? 0) + 1;
  return peer.complaints <= MAX_COMPLAINTS;
}
