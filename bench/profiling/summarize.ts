/**
 * Reads the .cpuprofile files of one run and prints, per process role (workers merged), where the
 * time went: idle and GC shares, then the functions with the most self time, then by file.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { markdownTable } from '../report/markdown-table.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface RoleTotals {
  processes: number;
  totalUs: number;
  byFunction: Map<string, number>;
  byFile: Map<string, number>;
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function shortUrl(url: string): string {
  if (!url) return '';
  return url
    .replace(/^file:\/\/.*?\/dist\//, '')
    .replace(/^file:\/\/.*?\/node_modules\//, '')
    .replace(/^node:internal\//, 'node:');
}

function functionKey(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (SPECIAL.has(name)) return name;
  return url ? `${name} ${shortUrl(url)}:${lineNumber + 1}` : `${name} (native)`;
}

function fileKey(node: ProfileNode): string {
  const name = node.callFrame.functionName;
  if (SPECIAL.has(name)) return name;
  return shortUrl(node.callFrame.url) || '(native: V8 builtins, JSON, zeromq addon)';
}

/** Self time in microseconds per node id: sample i lasts until sample i+1. */
function selfTimes(profile: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const duration = i + 1 < samples.length ? timeDeltas[i + 1]! : 0;
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + Math.max(0, duration));
  }
  return self;
}

function add(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us);
}

export function summarizeProfiles(directory: string, top = 15): string {
  const roles = new Map<string, RoleTotals>();
  for (const file of readdirSync(directory)
    .filter((name) => name.endsWith('.cpuprofile'))
    .sort()) {
    const role = file.slice(0, file.lastIndexOf('-'));
    const profile = JSON.parse(readFileSync(join(directory, file), 'utf8')) as CpuProfile;
    const totals = roles.get(role) ?? { processes: 0, totalUs: 0, byFunction: new Map(), byFile: new Map() };
    roles.set(role, totals);
    totals.processes++;
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
    for (const [id, us] of selfTimes(profile)) {
      const node = nodes.get(id)!;
      totals.totalUs += us;
      add(totals.byFunction, functionKey(node), us);
      add(totals.byFile, fileKey(node), us);
    }
  }
  const sections: string[] = [];
  for (const [role, totals] of roles) {
    const idle = totals.byFunction.get('(idle)') ?? 0;
    const busy = totals.totalUs - idle;
    const gc = totals.byFunction.get('(garbage collector)') ?? 0;
    const share = (us: number) => `${((100 * us) / Math.max(busy, 1)).toFixed(1)}%`;
    const ms = (us: number) => (us / 1000).toFixed(0);
    const rank = (map: Map<string, number>) =>
      [...map]
        .filter(([key]) => key !== '(idle)')
        .sort((a, b) => b[1] - a[1])
        .slice(0, top);
    sections.push(
      `#### ${role} (${totals.processes} process${totals.processes > 1 ? 'es' : ''}): ${ms(busy)} ms non-idle of ${ms(totals.totalUs)} ms sampled, GC ${share(gc)} of non-idle`,
      '',
      markdownTable(
        ['self ms', '% non-idle', 'function'],
        rank(totals.byFunction).map(([key, us]) => [ms(us), share(us), key]),
      ),
      '',
      markdownTable(
        ['self ms', '% non-idle', 'file'],
        rank(totals.byFile)
          .slice(0, 8)
          .map(([key, us]) => [ms(us), share(us), key]),
      ),
      '',
    );
  }
  return sections.join('\n');
}

if (process.argv[1]?.endsWith('summarize.js')) {
  const directory = process.argv[2];
  if (!directory) throw new Error('usage: summarize.js <directory of .cpuprofile files> [top]');
  process.stdout.write(summarizeProfiles(directory, Number(process.argv[3] ?? 15)));
}
