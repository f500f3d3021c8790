/**
 * Waits given an AbortSignal, on a real pool: aborting withdraws the wait and takes nothing, so
 * the results stay for the next poll, waitForResult or results(); a map or addJobAsync that feeds
 * a long list stops feeding it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnScatterGather, type JobItem, type ScatterGather } from '../caller/index.js';

/** A job that returns its number once its gate file exists. */
const heldSource = `async (gate, n) => {
  const fs = require('node:fs');
  while (!fs.existsSync(gate)) await new Promise((resolve) => setTimeout(resolve, 5));
  return n;
}`;

describe('waits with an AbortSignal', { timeout: 60_000 }, () => {
  let sg: ScatterGather;
  const scratch = mkdtempSync(join(tmpdir(), 'tsgather-signal-'));
  before(async () => {
    sg = await spawnScatterGather([], { workers: 1, echo: false, maxQueued: 8 });
    await sg.define('held', heldSource);
  });
  after(async () => {
    await sg.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** A closed gate: jobs given it wait until open() is called. */
  function gate(name: string): { items: (count: number) => JobItem[]; open: () => void } {
    const path = join(scratch, name);
    return { items: (count) => Array.from({ length: count }, (_, i) => [[path, i]]), open: () => writeFileSync(path, '') };
  }

  test('an aborted waitForResult or results() rejects with the reason and leaves the results for the next take', async () => {
    const { items, open } = gate('waits');
    sg.addJob('held', items(2));
    const controller = new AbortController();
    const waiting = sg.waitForResult({ all: true, signal: controller.signal });
    const iterating = (async () => {
      for await (const result of sg.results({ signal: controller.signal })) assert.fail(`took ${result.id}`);
    })();
    controller.abort(new Error('gave up'));
    await assert.rejects(waiting, { message: 'gave up' });
    await assert.rejects(iterating, { message: 'gave up' });
    await assert.rejects(sg.waitForResult({ signal: controller.signal }), { message: 'gave up' }, 'an aborted signal rejects at once');
    open();
    const results = await sg.waitForResult({ all: true });
    assert.deepEqual(results.map((result) => result.value).sort(), [0, 1]);
  });

  test('an aborted map stops feeding its list; its queued jobs still run', async () => {
    const { items, open } = gate('map');
    const controller = new AbortController();
    const before = sg.progress.total;
    const mapping = sg.map('held', items(40), { signal: controller.signal });
    controller.abort(new Error('stop'));
    await assert.rejects(mapping, { message: 'stop' });
    const queued = sg.progress.total - before;
    assert.ok(queued > 0 && queued <= 8, `${queued} queued under maxQueued 8`);
    open();
    while (sg.progress.outstanding > 0) await new Promise((resolve) => sg.once('progress', resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sg.progress.total - before, queued, 'nothing more was queued');
    assert.deepEqual(sg.poll(), [], 'the map took its results');
  });

  test('an aborted addJobAsync stops feeding; what it queued comes as usual', async () => {
    const { items, open } = gate('add');
    const controller = new AbortController();
    const before = sg.progress.total;
    const adding = sg.addJobAsync('held', items(40), { signal: controller.signal });
    controller.abort(new Error('enough'));
    await assert.rejects(adding, { message: 'enough' });
    const queued = sg.progress.total - before;
    open();
    const results = await sg.waitForResult({ all: true });
    assert.equal(results.length, queued);
  });
});
