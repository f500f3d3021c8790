/** Finding and ending the processes a kernel started (and theirs), so a shutdown leaves no orphans. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

interface ProcessEntry {
  pid: number;
  ppid: number;
  zombie: boolean;
}

function processTable(): ProcessEntry[] {
  try {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .flatMap((name) => {
        try {
          // "pid (comm) state ppid …": comm may hold spaces and parentheses, so parse from the last ')'
          const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
          const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          return [{ pid: Number(name), ppid: Number(ppid), zombie: state === 'Z' }];
        } catch {
          return [];
        }
      });
  } catch {
    return execFileSync('ps', ['-A', '-o', 'pid=,ppid=,stat='], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .map(([pid, ppid, stat]) => ({ pid: Number(pid), ppid: Number(ppid), zombie: stat?.startsWith('Z') ?? false }));
  }
}

/** Live descendants of `root`, parents before children. */
export function descendants(root = process.pid): number[] {
  const table = processTable();
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const entry of table) {
      if (entry.ppid === parent && !entry.zombie) {
        found.push(entry.pid);
        queue.push(entry.pid);
      }
    }
  }
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function signal(pids: number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM to every descendant; SIGKILL to those still there after the grace period. */
export async function endDescendants(graceMs = 2000, root = process.pid): Promise<void> {
  const pids = descendants(root);
  if (pids.length === 0) return;
  signal(pids, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  signal(pids.filter(isAlive), 'SIGKILL');
}

/** For process 'exit' handlers, which cannot wait. */
export function killDescendantsNow(root = process.pid): void {
  signal(descendants(root), 'SIGKILL');
}
