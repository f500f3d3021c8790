/** Reading other processes from /proc: resident memory, descendants, command lines. */
import { readFileSync, readdirSync } from 'node:fs';

/** Resident set size of a process in bytes (VmRSS), or NaN when it cannot be read. */
export function residentBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

function parentOf(pid: number): number | undefined {
  try {
    // Fields after the command name, which may hold spaces and parentheses: "pid (comm) state ppid ...".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

export function allPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** Every living descendant of `root` (children, grandchildren, ...). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const parent = parentOf(pid);
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  const found: number[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0 && found.length < 10_000) {
    const pid = stack.pop()!;
    found.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return found;
}

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Living processes (other than this one) whose environment holds `NAME=value`. */
export function processesWithEnv(name: string, value: string): number[] {
  const wanted = `${name}=${value}\0`;
  return allPids().filter((pid) => {
    if (pid === process.pid) return false;
    try {
      return readFileSync(`/proc/${pid}/environ`, 'latin1').includes(wanted);
    } catch {
      return false;
    }
  });
}

/** Clock ticks per second in /proc/<pid>/stat (USER_HZ, 100 on Linux). */
export const TICKS_PER_SECOND = 100;

/** CPU time of a process in ticks: utime + stime, plus cutime + cstime of its reaped children unless `ownOnly`. */
export function cpuTicks(pid: number | 'self', ownOnly = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ", fields[0] is the state (stat field 3), so utime..cstime (14..17) are 11..14.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (ownOnly ? [11, 12] : [11, 12, 13, 14]).reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  } catch {
    return 0;
  }
}
