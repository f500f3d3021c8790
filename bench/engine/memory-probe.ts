/**
 * Workload 7, run in a fresh process (node --expose-gc memory-probe.js <workers> <jobs>) so the
 * caller's heap holds nothing else. Method: occupy every worker with `hold` jobs so nothing drains,
 * measure both processes, queue the tiny jobs with addJob, wait until the controller has them all
 * (a status request answers only after every earlier message), measure again. Prints JSON.
 */
import type { ScatterGather } from '../../caller/index.js';
import { residentBytes } from '../proc.js';
import { sleep } from '../stats.js';
import { noArgItems, openSession } from './session.js';
import { encodeValue } from '../../protocol/codec.js';

const workers = Number(process.argv[2] ?? 2);
const jobs = Number(process.argv[3] ?? 1_000_000);
const HOLD_MS = 120_000;

const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});

function controllerPid(sg: ScatterGather): number {
  return (sg as unknown as { child: { pid: number } }).child.pid;
}

async function untilEveryWorkerBusy(sg: ScatterGather): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const status = await sg.status();
    const slots = (status.servers as Array<{ workers?: Array<{ busy: boolean }> }>).flatMap((s) => s.workers ?? []);
    if (slots.length >= workers && slots.every((w) => w.busy)) return;
    await sleep(10);
  }
  throw new Error('the hold jobs did not occupy every worker');
}

function measure(sg: ScatterGather) {
  collect();
  return { controllerRss: residentBytes(controllerPid(sg)), callerRss: process.memoryUsage().rss, callerHeap: process.memoryUsage().heapUsed };
}

const sg = await openSession(workers);
try {
  sg.addJob('noop', noArgItems(20_000)); // warm-up: JIT, the controller learns the no-op run time
  await sg.waitForResult({ all: true });
  sg.addJob(
    'hold',
    Array.from({ length: 2 * workers }, () => [[HOLD_MS]] as [unknown[]]),
  );
  await untilEveryWorkerBusy(sg);
  await sleep(200);
  const before = measure(sg);
  const items = noArgItems(jobs);
  const added = performance.now();
  sg.addJob('noop', items);
  const addJobMs = performance.now() - added;
  const status = await sg.status();
  const queuedMs = performance.now() - added;
  await sleep(500); // let the controller's heap settle after the bursts of messages
  const after = measure(sg);
  const drained = (await sg.status()).done - status.done;
  const payloadBytes = encodeValue([[]]).text.length;
  process.stdout.write(
    `${JSON.stringify({
      jobs,
      queuedAtController: status.queued,
      drainedMeanwhile: drained,
      addJobMs,
      queuedMs,
      payloadBytes,
      controllerBytesPerJob: (after.controllerRss - before.controllerRss) / jobs,
      callerRssBytesPerJob: (after.callerRss - before.callerRss) / jobs,
      callerHeapBytesPerJob: (after.callerHeap - before.callerHeap) / jobs,
      before,
      after,
    })}\n`,
  );
} finally {
  await sg.close();
}
