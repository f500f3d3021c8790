/**
 * How much CPU other processes took while a section ran: the machine's busy time from /proc/stat
 * less the CPU time of this process tree (live descendants, plus the reaped ones through cutime).
 * On 2 cores a neighbour's test run skews every figure, so the report says when it happened.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { cpuTicks, descendants, TICKS_PER_SECOND } from './proc.js';

export interface CpuSnapshot {
  at: number;
  machineBusyTicks: number;
  ourTicks: number;
}

function machineBusyTicks(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return user + nice + system + irq + softirq + steal;
}

export function cpuSnapshot(): CpuSnapshot {
  const ours = cpuTicks('self') + descendants(process.pid).reduce((sum, pid) => sum + cpuTicks(pid), 0);
  return { at: performance.now(), machineBusyTicks: machineBusyTicks(), ourTicks: ours };
}

/** Share of the machine's CPU capacity (0..1) that other processes used between two snapshots. */
export function foreignShare(before: CpuSnapshot, after: CpuSnapshot): number {
  const capacity = ((after.at - before.at) / 1000) * TICKS_PER_SECOND * os.cpus().length;
  const foreign = after.machineBusyTicks - before.machineBusyTicks - (after.ourTicks - before.ourTicks);
  return capacity > 0 ? Math.max(0, foreign / capacity) : 0;
}
