/** Workload 7: runs memory-probe.js in fresh processes and reports bytes per queued job. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchConfig } from '../config.js';
import { figure, type SystemFigures } from '../report/figures.js';
import { median, repeat } from '../stats.js';

const probeScript = fileURLToPath(new URL('./memory-probe.js', import.meta.url));
const PROBE_TIMEOUT_MS = 180_000;

export interface ProbeResult {
  jobs: number;
  queuedAtController: number;
  drainedMeanwhile: number;
  addJobMs: number;
  payloadBytes: number;
  controllerBytesPerJob: number;
  callerRssBytesPerJob: number;
  callerHeapBytesPerJob: number;
}

function probe(workers: number, jobs: number): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', probeScript, String(workers), String(jobs)], { timeout: PROBE_TIMEOUT_MS, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`memory probe failed: ${error.message}\n${stderr.slice(-2000)}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as ProbeResult);
      } catch {
        reject(new Error(`memory probe printed no result: ${stdout.slice(-500)}`));
      }
    });
  });
}

export async function measureMemory(config: BenchConfig, figures: SystemFigures, log: (line: string) => void): Promise<void> {
  log(`memory: ${config.memoryJobs.toLocaleString('en')} tiny jobs queued behind busy workers, ${config.memoryRuns} fresh process(es)`);
  const runs = await repeat(config.memoryRuns, 0, () => probe(config.workers, config.memoryJobs));
  const queued = median(runs.map((r) => r.queuedAtController));
  const payload = runs[0]!.payloadBytes;
  const method = `${config.memoryJobs.toLocaleString('en')} jobs, ${Math.round(queued).toLocaleString('en')} of them queued at the controller; RSS after − before; payload ${payload} B/job`;
  figures.memory_controller = figure(
    runs.map((r) => r.controllerBytesPerJob),
    'B/job',
    { jobs: config.memoryJobs, payloadBytes: payload, note: method },
  );
  figures.memory_caller = figure(
    runs.map((r) => r.callerRssBytesPerJob),
    'B/job',
    {
      jobs: config.memoryJobs,
      payloadBytes: payload,
      note: `${method}; V8 heap after GC ${Math.round(median(runs.map((r) => r.callerHeapBytesPerJob)))} B/job; addJob took ${Math.round(median(runs.map((r) => r.addJobMs)))} ms`,
    },
  );
}
