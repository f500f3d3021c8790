/**
 * Workload 8: the tiny-job throughput from inside a notebook cell, i.e. kernel → controller →
 * workers. Starts our Jupyter kernel directly (kernel/launch.ts), talks to it over ZeroMQ as a
 * Jupyter client does (kernel/client.ts), and times an execute_request whose cell queues the jobs
 * with addJob and waits for all results. The job items are built by an earlier cell, untimed.
 */
import { KernelClient } from '../kernel/client.js';
import { launchKernel, type LaunchedKernel } from '../kernel/launch.js';
import { atRest, SETTLE_POLL_MS, SETTLE_TIMEOUT_MS } from './engine/session.js';
import { figure, type SystemFigures } from './report/figures.js';
import { median, repeat } from './stats.js';

const MARK = 'BENCH-KERNEL ';
const CELL_TIMEOUT_MS = 120_000;

export interface KernelCellRun {
  /** execute_request sent → reply and idle status received, as the notebook user waits. */
  executeMs: number;
  /** addJob → all results, timed inside the cell. */
  inCellMs: number;
}

export class KernelCellBench {
  private constructor(
    private readonly kernel: LaunchedKernel,
    private readonly client: KernelClient,
  ) {}

  static async start(workers: number): Promise<KernelCellBench> {
    const kernel = await launchKernel();
    const client = KernelClient.connect(kernel.info);
    const bench = new KernelCellBench(kernel, client);
    try {
      await client.waitForReady();
      await bench.run(`const benchSg = await spawnScatterGather([], { workers: ${workers}, echo: false });\nawait benchSg.define('noop', () => null);`);
      // At rest before anything is timed, as engine/session.ts's settle() waits: its spares loaded.
      await bench.run(
        `const benchAtRest = ${atRest.toString()};\nfor (const until = Date.now() + ${SETTLE_TIMEOUT_MS}; !benchAtRest(await benchSg.status()); ) {\n  if (Date.now() > until) throw new Error('the engine did not come to rest');\n  await new Promise((resolve) => setTimeout(resolve, ${SETTLE_POLL_MS}));\n}`,
      );
      return bench;
    } catch (error) {
      await bench.close();
      throw error;
    }
  }

  async tinyJobs(jobs: number): Promise<KernelCellRun> {
    await this.run(`globalThis.benchItems = Array.from({ length: ${jobs} }, () => [[]]);`);
    const cell = [
      'const benchT0 = performance.now();',
      "benchSg.addJob('noop', globalThis.benchItems);",
      'const benchResults = await benchSg.waitForResult({ all: true });',
      `console.log('${MARK}' + JSON.stringify({ ms: performance.now() - benchT0, n: benchResults.length }));`,
    ].join('\n');
    const started = performance.now();
    // Each run is its own block scope so the consts can be declared again.
    const printed = await this.run(`{\n${cell}\n}`);
    const executeMs = performance.now() - started;
    const line = printed.split('\n').find((l) => l.startsWith(MARK));
    if (!line) throw new Error(`the cell printed no result line; it printed: ${printed.slice(0, 500)}`);
    const { ms, n } = JSON.parse(line.slice(MARK.length)) as { ms: number; n: number };
    if (n !== jobs) throw new Error(`the cell got ${n} results for ${jobs} jobs`);
    return { executeMs, inCellMs: ms };
  }

  async close(): Promise<void> {
    try {
      await this.run('await benchSg?.close();').catch(() => undefined);
      await this.client.request('control', 'shutdown_request', { restart: false }, 10_000).catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.kernel.exited, new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]);
      clearTimeout(timer);
    } finally {
      this.client.close();
      await this.kernel.kill();
    }
  }

  /** Executes a cell; resolves with what it printed on stdout, rejects if it failed. */
  private async run(code: string): Promise<string> {
    let printed = '';
    const { reply } = await this.client.execute(code, {
      timeoutMs: CELL_TIMEOUT_MS,
      onIOPub: (message) => {
        if (message.header.msg_type === 'stream') printed += (message.content as { text: string }).text;
      },
    });
    if (reply.content.status !== 'ok') {
      const detail = reply.content.status === 'error' ? `${reply.content.ename}: ${reply.content.evalue}` : reply.content.status;
      throw new Error(`kernel cell failed: ${detail}`);
    }
    return printed;
  }
}

/** Workload 8 for the table: jobs per second as the notebook user waits for the cell. */
export async function measureKernelCell(config: { workers: number; runs: number; tinyJobs: number }, figures: SystemFigures, log: (line: string) => void): Promise<void> {
  log(`kernel cell: ${config.tinyJobs.toLocaleString('en')} tiny jobs per cell`);
  const bench = await KernelCellBench.start(config.workers);
  try {
    const runs = await repeat(config.runs, 1, () => bench.tinyJobs(config.tinyJobs));
    const inCell = median(runs.map((r) => config.tinyJobs / (r.inCellMs / 1000)));
    figures.kernel_tiny = figure(
      runs.map((r) => config.tinyJobs / (r.executeMs / 1000)),
      'jobs/s',
      {
        jobs: config.tinyJobs,
        note: `execute_request → reply and idle; timed inside the cell: ${Math.round(inCell).toLocaleString('en')} jobs/s`,
      },
    );
  } finally {
    await bench.close();
  }
}
