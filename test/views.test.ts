/**
 * Live views: through the real kernel (headless runner), `sg.status()` renders as a table and
 * `sg.plotDurations(results)` as a Vega-Lite chart; in a terminal (a real pty via `script`), a
 * script's map draws a cli-progress bar, and not when opted out or piped.
 */
import type { ICodeCell, IError, IExecuteResult, INotebookContent } from '@jupyterlab/nbformat';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { runNotebook } from '../kernel/run-notebook.js';
import { renderStatus } from '../kernel/views.js';
import { runProgram } from './cli-helpers.js';
import { codeNotebook } from './helpers.js';

let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), 'tsgather-views-'))));
after(() => rm(dir, { recursive: true, force: true }));

const resultOf = (cell: ICodeCell) => cell.outputs.find((o): o is IExecuteResult => o.output_type === 'execute_result');

test('the status summary counts spare workers, ready and starting, when servers have any', () => {
  const status = (spares?: { ready: number; starting: number }) => ({ servers: [{ id: 's', connected: true, spares, workers: [] }], workers: 0, queued: 0, done: 0, failed: 0 });
  assert.match(String(renderStatus(status({ ready: 2, starting: 1 })).data['text/plain']), /^1 server\(s\), 0 worker\(s\) \(0 busy, 0 idle\), 2 spare\(s\) ready and 1 starting; jobs:/);
  assert.match(String(renderStatus(status({ ready: 2, starting: 0 })).data['text/plain']), /\(0 busy, 0 idle\), 2 spare\(s\) ready; jobs:/);
  assert.match(String(renderStatus(status(undefined)).data['text/plain']), /\(0 busy, 0 idle\); jobs:/);
});

describe('notebook views through the kernel', { timeout: 120_000 }, () => {
  test('status() renders a table of servers and workers; plotDurations draws job durations per worker', async () => {
    const input = join(dir, 'views.ipynb');
    await writeFile(
      input,
      JSON.stringify(
        codeNotebook(
          'const sg = await spawnScatterGather([], { workers: 2 });\nawait sg.define("nap", (ms: number) => { const end = Date.now() + ms; while (Date.now() < end); if (ms === 13) throw new Error("unlucky"); return ms; });\nconst results = await sg.mapResults("nap", [5, 13, 10, 20, 5, 15, 10, 5].map((ms) => [[ms]]));\nawait sg.status()',
          'const status = await sg.status();\n[status.done, status.failed, status.workers, Object.keys(status).includes("servers")]',
          'sg.plotDurations(results)',
          'sg.plotDurations(await sg.map("nap", [[[1]]]))',
          'await sg.close();',
        ),
      ),
    );
    const run = await runNotebook(input, { allowErrors: true });
    const cells = (JSON.parse(await readFile(run.outputPath, 'utf8')) as INotebookContent).cells as ICodeCell[];

    const table = resultOf(cells[0]!)!;
    const html = String(table.data['text/html']);
    assert.match(html, /<table>/);
    assert.match(html, /<th>server<\/th><th>host<\/th><th>worker<\/th><th>pid<\/th><th>state<\/th><th>in flight<\/th><th>done<\/th><th>failed<\/th><th>jobs\/s<\/th>/);
    const rows = [...html.matchAll(/<tr class="tsgather-(idle|busy)">(.*?)<\/tr>/g)];
    assert.equal(rows.length, 2, 'one row per worker');
    assert.ok(
      rows.every(([, state]) => state === 'idle'),
      'all idle once the batch is done',
    );
    const cellsOf = (row: string) => [...row.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((m) => m[1]!);
    const done = rows.reduce((n, [, , row]) => n + Number(cellsOf(row!)[6]), 0);
    const failed = rows.reduce((n, [, , row]) => n + Number(cellsOf(row!)[7]), 0);
    assert.equal(done, 7);
    assert.equal(failed, 1);
    // Spares, when the server has some by then, are counted after the workers.
    assert.match(html, /1 server\(s\), 2 worker\(s\) \(0 busy, 2 idle\)(, \d spare\(s\) ready( and \d starting)?)?; jobs: 7 done, 1 failed/);
    assert.match(String(table.data['text/plain']), /^1 server\(s\), 2 worker\(s\)[\s\S]*\n.*server +host +worker +pid +state/);

    // Still the data underneath.
    assert.equal(resultOf(cells[1]!)!.data['text/plain'], '[ 7, 1, 2, true ]');

    const chart = resultOf(cells[2]!)!;
    const spec = chart.data['application/vnd.vegalite.v5+json'] as {
      $schema: string;
      data: { values: Array<{ job: number; worker: string; runMs: number; ok: string; startMs: number; endMs: number }> };
      vconcat: unknown[];
    };
    assert.match(spec.$schema, /vega-lite\/v5/);
    assert.equal(spec.data.values.length, 8);
    assert.equal(new Set(spec.data.values.map((v) => v.job)).size, 8);
    assert.ok(spec.data.values.every((v) => /\/w\d+$/.test(v.worker) && v.endMs - v.startMs === v.runMs && v.runMs >= 0));
    assert.deepEqual(spec.data.values.filter((v) => v.ok === 'failed').length, 1);
    assert.ok(
      spec.data.values.find((v) => v.runMs >= 19),
      'the 20 ms job took about 20 ms',
    );
    assert.equal(spec.vconcat.length, 2);
    assert.match(String(chart.data['text/plain']), /^<Vega-Lite chart: durations of 8 job\(s\) on [12] worker\(s\)>/);

    // Values instead of results: a clear error naming what is needed.
    const wrong = cells[3]!.outputs.find((o) => o.output_type === 'error') as IError;
    assert.equal(wrong.output_type, 'error');
    assert.equal(wrong.ename, 'TypeError');
    assert.match(wrong.evalue, /needs job results with timings: the array from mapResults/);
    assert.equal(run.errors.length, 1);
  });
});

describe('terminal progress bar', { timeout: 60_000 }, () => {
  const index = fileURLToPath(new URL('../caller/index.js', import.meta.url));
  const script = (options: string) => `
    import { spawnScatterGather } from ${JSON.stringify(index)};
    const sg = await spawnScatterGather([], { workers: 1, ${options} });
    await sg.define('id', (x) => x);
    const values = await sg.map('id', Array.from({ length: 25 }, (_, i) => [[i]]));
    await sg.close();
    console.log('sum ' + values.reduce((a, b) => a + b, 0));`;

  /** Runs the script under a real pseudo-terminal (util-linux `script`), so stdout.isTTY is true. */
  async function inTerminal(source: string): Promise<string> {
    const file = join(dir, `bar-${Math.random().toString(36).slice(2)}.mjs`);
    await writeFile(file, source);
    const ran = await runProgram('script', ['-qefc', `${process.execPath} ${file}`, '/dev/null'], { env: { ...process.env, COLUMNS: '120' } });
    assert.equal(ran.code, 0, ran.stderr + ran.stdout);
    return ran.stdout;
  }

  test('map draws a cli-progress bar when stdout is a terminal', async () => {
    const out = await inTerminal(script(''));
    assert.match(out, /map\(id\) .* 100% \| 25\/25 \| 0 failed \| [\d.]+ jobs\/s/);
    assert.match(out, /sum 300/);
  });

  test('no bar with progress: false, nor when stdout is not a terminal', async () => {
    const quiet = await inTerminal(script('progress: false'));
    assert.doesNotMatch(quiet, /25\/25/);
    assert.match(quiet, /sum 300/);
    const file = join(dir, 'piped.mjs');
    await writeFile(file, script(''));
    const piped = await runProgram(process.execPath, [file]);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'sum 300\n');
  });
});
