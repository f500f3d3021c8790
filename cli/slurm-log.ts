/**
 * What a Slurm-started server last said about its controller, from its log (JSON lines on the
 * job's output): `cluster status --slurm` runs where the controller cannot be asked.
 */
import { existsSync, readFileSync } from 'node:fs';

/** Log messages that say where a server stands with its controller, and how to put them. */
const SAYINGS: Array<[RegExp, (entry: Record<string, unknown>) => string]> = [
  [/^dialling controller$/, (e) => `dialling ${String(e.url)}, not connected yet`],
  [/^connected to controller$/, (e) => `connected to ${String(e.url)}`],
  [/^controller greeted$/, () => 'in session with its controller'],
  [/^disconnected from controller$/, (e) => `disconnected from ${String(e.url)}`],
  [/^draining$/, () => 'draining'],
  [/^stopping$/, (e) => `stopping (${String(e.why)})`],
  [/refused|handshake/, (e) => String(e.msg)],
];

export function serverLogSays(file: string): string {
  if (!existsSync(file)) return `no log yet (${file})`;
  let said = 'started, nothing said of its controller yet';
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const msg = String(entry.msg ?? '');
    const saying = SAYINGS.find(([pattern]) => pattern.test(msg));
    if (saying) said = saying[1](entry);
  }
  return said;
}
