/**
 * Each waiting call's progress counts that call's jobs, not the session's, and ends (final
 * counts shown) when the call returns or throws: through the Reporter API in a script, and
 * through the real kernel as display_data / update_display_data messages. The examples of the
 * issue: a map of 4 after 150 jobs ("154/154"), a mapResults of 2 after failures ("23/28, 5
 * failed"), and waitForResult() for the first of 100 (a frozen "1/100").
 */
import type { KernelMessage } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { RemoteError, spawnScatterGather, type Progress, type ProgressView, type Reporter, type ScatterGather, type WaitingCall } from '../caller/index.js';
import { KernelClient } from '../kernel/client.js';
import { launchKernel, type LaunchedKernel } from '../kernel/launch.js';
import { runProgram } from './cli-helpers.js';

/** Busy for `ms`; 13 throws. */
const NAP = '(ms) => { const end = Date.now() + ms; while (Date.now() < end); if (ms === 13) throw new Error("unlucky"); return ms; }';

interface Recorded {
  call: WaitingCall;
  initial: Progress;
  updates: Progress[];
  final?: Progress;
  error?: Error;
}

/** A reporter that keeps what each view was told. */
function recordingReporter(): { reporter: Reporter; views: Recorded[] } {
  const views: Recorded[] = [];
  const reporter: Reporter = {
    progress(initial, call): ProgressView {
      const view: Recorded = { call, initial: { ...initial }, updates: [] };
      views.push(view);
      return {
        update: (progress) => {
          assert.equal(view.final, undefined, `${call?.label} updated after it ended`);
          view.updates.push({ ...progress });
        },
        done: (progress, error) => {
          assert.equal(view.final, undefined, `${call?.label} ended twice`);
          view.final = { ...progress };
          view.error = error;
        },
      };
    },
  };
  return { reporter, views };
}

const counts = (p: Progress) => ({ done: p.done, failed: p.failed, total: p.total, outstanding: p.outstanding });

/** Every count a view was shown stays within its call's jobs. */
function assertWithin(view: Recorded, total: number): void {
  for (const p of [view.initial, ...view.updates, view.final!]) {
    assert.ok(p.total <= total && p.done + p.failed + p.outstanding === p.total, `${view.call.label}: ${JSON.stringify(p)} within ${total}`);
  }
}

describe('progress of each call through the Reporter API (a script)', { timeout: 120_000 }, () => {
  let sg: ScatterGather;
  const { reporter, views } = recordingReporter();
  const taken = () => views.splice(0);
  const ids = (n: number, ms: number, fail = 0) => Array.from({ length: n }, (_, i): [unknown[]] => [[i < fail ? 13 : ms]]);

  before(async () => {
    sg = await spawnScatterGather([], { workers: 2, reporter, echo: false });
    await sg.define('nap', NAP);
  });
  after(() => sg?.close());

  test('waitForResult({ all: true }) over 150 jobs, 5 failing: its bar counts those 150', async () => {
    sg.addJob('nap', ids(150, 0, 5));
    const results = await sg.waitForResult({ all: true });
    assert.equal(results.length, 150);
    const [view, ...more] = taken();
    assert.deepEqual(more, []);
    assert.deepEqual(view!.call, { method: 'waitForResult', all: true, label: 'waitForResult({ all: true })' });
    assert.deepEqual(counts(view!.initial), { done: 0, failed: 0, total: 150, outstanding: 150 });
    assert.deepEqual(counts(view!.final!), { done: 145, failed: 5, total: 150, outstanding: 0 });
    assert.equal(view!.error, undefined);
    assertWithin(view!, 150);
  });

  test('a map of 4 after them shows 4/4, not 154/154; a mapResults of 2 shows 1/2 and 1 failed, not 23/28', async () => {
    assert.deepEqual(await sg.map('nap', ids(4, 1)), [1, 1, 1, 1]);
    const [mapView] = taken();
    assert.deepEqual(counts(mapView!.final!), { done: 4, failed: 0, total: 4, outstanding: 0 });
    assert.deepEqual(counts(mapView!.initial), { done: 0, failed: 0, total: 4, outstanding: 4 });
    assert.deepEqual(mapView!.call, { method: 'map', fn: 'nap', label: 'map(nap)' });
    assertWithin(mapView!, 4);

    const results = await sg.mapResults('nap', ids(2, 1, 1));
    assert.deepEqual(
      results.map((r) => r.ok),
      [false, true],
    );
    const [resultsView, ...more] = taken();
    assert.deepEqual(more, []);
    assert.deepEqual(counts(resultsView!.final!), { done: 1, failed: 1, total: 2, outstanding: 0 });
    assert.equal(resultsView!.call.label, 'mapResults(nap)');
    assertWithin(resultsView!, 2);
    // The session's own counts are still the session's.
    assert.deepEqual(counts(sg.progress), { done: 150, failed: 6, total: 156, outstanding: 0 });
  });

  test('waitForResult() for the first of 100 ends with the results it returned; results() counts the rest', async () => {
    sg.addJob('nap', ids(100, 20));
    const first = await sg.waitForResult();
    const [firstView] = taken();
    assert.ok(first.length >= 1);
    assert.deepEqual(counts(firstView!.final!), { done: first.length, failed: 0, total: first.length, outstanding: 0 });
    assert.deepEqual(counts(firstView!.initial), { done: 0, failed: 0, total: 1, outstanding: 1 });
    assert.deepEqual(firstView!.call, { method: 'waitForResult', all: false, label: 'waitForResult()' });

    let rest = 0;
    for await (const result of sg.results()) rest += result.ok ? 1 : 0;
    assert.equal(rest, 100 - first.length);
    const [iterationView, ...more] = taken();
    assert.deepEqual(more, []);
    assert.deepEqual(iterationView!.call, { method: 'results', label: 'results()' });
    assert.deepEqual(counts(iterationView!.final!), { done: rest, failed: 0, total: rest, outstanding: 0 });
    assertWithin(iterationView!, rest);
  });

  test('results() left early ends its bar there', async () => {
    sg.addJob('nap', ids(10, 20));
    for await (const _ of sg.results()) break;
    const [view] = taken();
    assert.ok(view?.final, 'ended');
    assert.ok(view.final.done >= 1 && view.final.total <= 10);
    await sg.waitForResult({ all: true });
    taken();
  });

  test('submit has a bar of its one job; concurrent calls each count their own, a submit beside them shows none', async () => {
    assert.equal(await sg.submit('nap', [2]), 2);
    const [submitView] = taken();
    assert.deepEqual(submitView!.call, { method: 'submit', fn: 'nap', label: 'submit(nap)' });
    assert.deepEqual(counts(submitView!.final!), { done: 1, failed: 0, total: 1, outstanding: 0 });

    const [three, five, one] = await Promise.all([sg.map('nap', ids(3, 5)), sg.mapResults('nap', ids(5, 5)), sg.submit('nap', [5])]);
    assert.equal(three.length + five.length, 8);
    assert.equal(one, 5);
    const shown = taken();
    assert.deepEqual(
      shown.map((v) => [v.call.label, counts(v.final!)]),
      [
        ['map(nap)', { done: 3, failed: 0, total: 3, outstanding: 0 }],
        ['mapResults(nap)', { done: 5, failed: 0, total: 5, outstanding: 0 }],
      ],
    );
    for (const view of shown) assertWithin(view, view.call.method === 'map' ? 3 : 5);
  });

  test('a map that throws ends its bar with the counts and the error', async () => {
    await assert.rejects(sg.map('nap', ids(3, 1, 1)), RemoteError);
    const [view] = taken();
    assert.deepEqual(counts(view!.final!), { done: 2, failed: 1, total: 3, outstanding: 0 });
    assert.ok(view!.error instanceof RemoteError);
    assert.match(view!.error.message, /unlucky/);
  });
});

test("a script's terminal bars count each call's jobs and are labelled with the call; a results() loop draws none", { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsgather-call-progress-'));
  try {
    const index = fileURLToPath(new URL('../caller/index.js', import.meta.url));
    const file = join(dir, 'bars.mjs');
    await writeFile(
      file,
      `import { spawnScatterGather } from ${JSON.stringify(index)};
const sg = await spawnScatterGather([], { workers: 1, echo: false });
await sg.define('id', (x) => x);
sg.addJob('id', Array.from({ length: 150 }, (_, i) => [[i]]));
await sg.waitForResult({ all: true });
await sg.map('id', [[[1]], [[2]], [[3]], [[4]]]);
sg.addJob('id', [[[5]], [[6]]]);
for await (const r of sg.results()) console.log('result ' + r.value);
await sg.close();`,
    );
    // A real pseudo-terminal (util-linux script), so that stdout.isTTY is true.
    const ran = await runProgram('script', ['-qefc', `${process.execPath} ${file}`, '/dev/null'], { env: { ...process.env, COLUMNS: '160' } });
    assert.equal(ran.code, 0, ran.stderr + ran.stdout);
    const finals = (label: string) => [...ran.stdout.matchAll(new RegExp(`${label.replace(/[(){}]/g, '\\$&')} \\S+ (\\d+)% \\| (\\d+)/(\\d+)`, 'g'))].map((m) => m.slice(1).join(' '));
    assert.equal(finals('waitForResult({ all: true })').at(-1), '100 150 150');
    assert.equal(finals('map(id)').at(-1), '100 4 4');
    assert.doesNotMatch(ran.stdout, /154/);
    assert.doesNotMatch(ran.stdout, /results\(\)/);
    assert.match(ran.stdout, /result 5\r?\nresult 6/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** The progress displays of one execute request: every message of each, by display id. */
function progressDisplays(iopub: KernelMessage.IIOPubMessage[]): Array<{ texts: string[]; html: string }> {
  const byId = new Map<string, { texts: string[]; html: string }>();
  for (const message of iopub) {
    if (message.header.msg_type !== 'display_data' && message.header.msg_type !== 'update_display_data') continue;
    const content = (message as KernelMessage.IDisplayDataMsg).content;
    const html = String(content.data['text/html'] ?? '');
    if (!html.includes('tsgather-progress')) continue;
    const id = String(content.transient?.display_id);
    const entry = byId.get(id) ?? { texts: [], html };
    if (message.header.msg_type === 'display_data') assert.ok(!byId.has(id), 'one display_data per display');
    entry.texts.push(String(content.data['text/plain']));
    entry.html = html;
    byId.set(id, entry);
  }
  return [...byId.values()];
}

describe('progress of each call through the kernel', { timeout: 180_000 }, () => {
  let kernel: LaunchedKernel;
  let client: KernelClient;

  before(async () => {
    kernel = await launchKernel();
    client = KernelClient.connect(kernel.info);
    await client.waitForReady();
  });
  after(async () => {
    client?.close();
    await kernel?.kill();
  });

  /** Runs a cell: its progress displays, and its value's text. */
  async function run(code: string): Promise<{ displays: Array<{ texts: string[]; html: string }>; value?: string }> {
    const { reply, iopub } = await client.execute(code, { timeoutMs: 60_000 });
    const result = iopub.find((m) => m.header.msg_type === 'execute_result') as KernelMessage.IExecuteResultMsg | undefined;
    const error = reply.content.status === 'error' ? reply.content.evalue : undefined;
    return { displays: progressDisplays(iopub), value: result ? String(result.content.data['text/plain']) : error };
  }

  /** The final text of each display, and that none is left waiting. */
  const finals = ({ displays }: { displays: Array<{ texts: string[]; html: string }> }) =>
    displays.map(({ texts, html }) => {
      assert.match(html, /tsgather-progress-(ended|threw)/, 'the last message shows the call ended');
      return texts.at(-1)!;
    });

  test('each call of the examples has its own display, ended with its own counts', async () => {
    const setup = await run(`const sg = await spawnScatterGather([], { workers: 2 });
await sg.define('nap', ${NAP});
sg.addJob('nap', Array.from({ length: 150 }, (_, i) => [[i < 5 ? 13 : 0]]));
(await sg.waitForResult({ all: true })).length`);
    assert.deepEqual(
      finals(setup).map((t) => t.replace(/ in [\d.]+ s$/, '')),
      ['[##############################] waitForResult({ all: true }): 145/150 done, 5 failed,'],
    );

    assert.equal(setup.value, '150');
    const map = finals(await run(`await sg.map('nap', [[[1]], [[1]], [[1]], [[1]]])`));
    assert.equal(map.length, 1);
    assert.match(map[0]!, /^\[#{30}\] map\(nap\): 4\/4 done, 0 failed, in [\d.]+ s$/);

    const mapResults = finals(await run(`(await sg.mapResults('nap', [[[13]], [[1]]])).map((r) => r.ok)`));
    assert.equal(mapResults.length, 1);
    assert.match(mapResults[0]!, /^\[#{30}\] mapResults\(nap\): 1\/2 done, 1 failed, in [\d.]+ s$/);

    const first = await run(`sg.addJob('nap', Array.from({ length: 100 }, () => [[20]]));
const first = await sg.waitForResult();
let rest = 0;
for await (const r of sg.results()) rest++;
[first.length, rest].join(' ')`);
    const [firstCount, rest] = first.value!.replace(/'/g, '').split(' ').map(Number) as [number, number];
    assert.equal(firstCount + rest, 100);
    const [waitText, resultsText, ...more] = finals(first);
    assert.deepEqual(more, []);
    assert.match(waitText!, new RegExp(`^\\[#{30}\\] waitForResult\\(\\): ${firstCount}/${firstCount} done, 0 failed, in [\\d.]+ s$`));
    assert.match(resultsText!, new RegExp(`^\\[#{30}\\] results\\(\\): ${rest}/${rest} done, 0 failed, in [\\d.]+ s$`));

    const thrown = await run(`await sg.map('nap', [[[1]], [[13]], [[1]]])`);
    assert.match(finals(thrown)[0]!, /^\[#{30}\] map\(nap\): 2\/3 done, 1 failed, in [\d.]+ s; threw Error: unlucky$/);
    assert.match(thrown.displays[0]!.html, /tsgather-progress-threw/);
    assert.match(thrown.value!, /unlucky/);

    const both = finals(await run(`await Promise.all([sg.map('nap', [[[5]], [[5]], [[5]]]), sg.mapResults('nap', [[[5]], [[5]]]), sg.submit('nap', [5])]); await sg.submit('nap', [1]);`));
    assert.deepEqual(
      both.map((t) => t.replace(/^\[#+\] /, '').replace(/, in [\d.]+ s$/, '')),
      ['map(nap): 3/3 done, 0 failed', 'mapResults(nap): 2/2 done, 0 failed', 'submit(nap): 1/1 done, 0 failed'],
    );
    await run('await sg.close()');
  });
});
