/**
 * The controller's side of mapReduce onServers, through its real dispatch: a real caller and
 * controller, and a scripted server (test/scripted-server.ts) whose worker answers with rows the
 * test writes, so that each rule is met head on. Folded acks free a worker's window without
 * completing anything, a partial completes its jobs whole or not at all, and a lost worker's folded
 * jobs go back to the queue.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ScatterGather } from '../caller/index.js';
import { RowKind } from '../protocol/index.js';
import { withScriptedPool, type ScriptedServer } from './scripted-server.js';

const items = (n: number) => Array.from({ length: n }, (_, i) => [[i]] as [number[]]);
const add = (total: number, value: number) => total + value;
type Row = [number, number, string];
const folded = (ids: number[]): Row[] => ids.map((id) => [id, RowKind.folded, 'null']);
/** A partial of `value` at the first id, the others covered. */
const partial = (ids: number[], value: number): Row[] => ids.map((id, i) => (i === 0 ? [id, RowKind.partial, String(value)] : [id, RowKind.covered, 'null']));

describe('folded jobs at the controller, from a scripted server', () => {
  let sg: ScatterGather;
  let peer: ScriptedServer;
  withScriptedPool((pool) => ({ sg, peer } = pool));

  test('folded acks free the window and tell the caller nothing; a partial completes every job it covers; a repeated one is dropped', async () => {
    const n = 3000;
    const start = await sg.status();
    const done = sg.progress.done;
    const call = sg.mapReduce('square', items(n), add, 0, { onServers: true });
    const acked: number[] = [];
    let rounds = 0;
    while (acked.length < n) {
      const { ids, fold } = await peer.jobs();
      assert.ok(Array.isArray(fold), 'the jobs carry their fold tag');
      await peer.results(folded(ids));
      acked.push(...ids);
      rounds++;
    }
    assert.ok(rounds > 1, `more jobs came as acks freed the window (${rounds} rounds)`);
    const held = await sg.status(); // the controller read every ack before it answers
    assert.equal(sg.progress.done, done, 'no ack reached the caller');
    assert.equal(held.done, start.done, 'nor completed a job');
    await peer.results(partial(acked, 12_345));
    assert.equal(await call, 12_345);
    assert.equal(sg.progress.done - done, n, 'the partial completed every job it covers');
    await peer.results(partial(acked, 12_345));
    // The repeat comes on the server's link, the status request on the caller's: ask until it is read.
    let end = await sg.status();
    for (const deadline = Date.now() + 10_000; end.duplicatesDropped - start.duplicatesDropped < n && Date.now() < deadline; ) end = await sg.status();
    assert.equal(end.done - start.done, n);
    assert.equal(end.duplicatesDropped - start.duplicatesDropped, n, 'a partial of jobs already done is dropped');
    assert.equal(end.retried - start.retried, 0);
  });

  test('a partial that cannot be taken whole is dropped: its jobs still folded there run again (retried), the others count as duplicates', async () => {
    const start = await sg.status();
    const call = sg.mapReduce('square', items(3), add, 0, { onServers: true });
    const { ids } = await peer.jobs(1, 3);
    const [a, b, c] = ids as [number, number, number];
    await peer.results(folded([a, b]));
    // Job c is in flight, not folded: a partial may not cover it.
    await peer.results(partial([a, b, c], 5));
    const again = await peer.jobs(1, 2);
    assert.deepEqual(
      again.ids.sort((x, y) => x - y),
      [a, b],
      'the folded jobs were requeued',
    );
    const dropped = await sg.status();
    assert.equal(dropped.done, start.done, 'none completed');
    assert.equal(dropped.retried - start.retried, 2, 'a and b run again');
    assert.equal(dropped.duplicatesDropped - start.duplicatesDropped, 1, 'only c was not the partial’s to cover');
    await peer.results([...folded([a, b, c]), ...partial([a, b, c], 5)]);
    assert.equal(await call, 5);
  });

  test('a lost worker’s folded jobs go back to the queue uncharged; a late partial from it is dropped', async () => {
    const start = await sg.status();
    const call = sg.mapReduce('square', items(5), add, 0, { onServers: true });
    const { ids } = await peer.jobs(1, 5);
    await peer.results(folded(ids.slice(0, 3)));
    await sg.status(); // the acks are in
    await peer.workerDown(1);
    await peer.results(partial(ids.slice(0, 3), 99), 1); // from the worker gone: its jobs were requeued
    await peer.workerUp(2);
    const rerun: number[] = [];
    while (rerun.length < 5) {
      const sent = await peer.jobs(2);
      await peer.results(folded(sent.ids), 2);
      rerun.push(...sent.ids);
    }
    assert.deepEqual(
      rerun.sort((x, y) => x - y),
      ids,
      'every job ran again on the new worker',
    );
    const lost = await sg.status();
    assert.equal(lost.retried - start.retried, 3, 'the 3 folded jobs were requeued, counted as retried');
    assert.equal(lost.duplicatesDropped - start.duplicatesDropped, 3, 'the late partial was dropped');
    assert.equal(lost.done, start.done);
    await peer.results(partial(ids, 7), 2);
    assert.equal(await call, 7, 'only the new worker’s partial counts');
    const results = (await sg.status()).failed - start.failed;
    assert.equal(results, 0, 'nothing was charged or failed');
  });
});
