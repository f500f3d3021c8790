/**
 * Server labels: `tsgather server --label gpu --label site=lab2` declares them; jobs and
 * definitions asking for labels run only on servers carrying every one; jobs no connected server
 * can take wait, counted as unplaceable, until such a server joins, or fail with an
 * UnplaceableError once their placement time is over.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { startServer, waitUntil, type RunningServer } from './helpers.js';
import { runCli } from './cli-helpers.js';

const items = (n: number) => Array.from({ length: n }, (_, i) => [[i]] as [number[]]);
const WHERE = `() => process.env.TSGATHER_TEST_SERVER`;

/** A server whose workers say which server they are (through the environment they inherit). */
async function labelledServer(name: string, labels: string[]): Promise<RunningServer> {
  process.env.TSGATHER_TEST_SERVER = name;
  try {
    return await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--name', name, '--log-level', 'error', ...labels.flatMap((label) => ['--label', label])]);
  } finally {
    delete process.env.TSGATHER_TEST_SERVER;
  }
}

describe('labelled servers', () => {
  let gpu: RunningServer;
  let plain: RunningServer;
  let sg: ScatterGather;
  before(async () => {
    [gpu, plain] = await Promise.all([labelledServer('gpu-box', ['gpu', 'site=lab2']), labelledServer('plain-box', [])]);
    sg = await spawnScatterGather([gpu.endpoint, plain.endpoint], { echo: false, progress: false });
    await sg.define('where', WHERE);
  });
  after(async () => {
    await sg?.close();
    await Promise.all([gpu?.stop(), plain?.stop()]);
  });

  test('status shows each server its labels', async () => {
    const status = await sg.status();
    const labels = Object.fromEntries(status.servers.map((s) => [s.id, s.labels]));
    assert.deepEqual(labels, { 'gpu-box': ['gpu', 'site=lab2'], 'plain-box': [] });
  });

  test('jobs asking for labels run only on a server carrying every one; jobs asking for none run anywhere', async () => {
    assert.deepEqual(new Set(await sg.map('where', items(40), { labels: ['gpu'] })), new Set(['gpu-box']));
    assert.deepEqual(new Set(await sg.map('where', items(40), { labels: ['site=lab2', 'gpu'] })), new Set(['gpu-box']));
    // More than one worker's window (8,192 at most): tiny jobs go at least 2 ms of work to a message, so a few hundred would all fit on one worker.
    const anywhere = await sg.mapResults('where', items(20_000));
    assert.deepEqual(new Set(anywhere.map((r) => r.worker.server)), new Set(['gpu-box', 'plain-box']));
  });

  test('a definition restricted to labels reaches only those servers, and its jobs run there', async () => {
    await sg.define('train', `(i) => process.env.TSGATHER_TEST_SERVER + ':' + i`, { labels: ['gpu'] });
    const values = await sg.map<string>('train', items(30));
    assert.ok(
      values.every((v) => v.startsWith('gpu-box:')),
      `every job of train ran on gpu-box: ${values.slice(0, 5)}`,
    );
  });

  test('jobs no connected server can take wait as unplaceable until one joins; with a placement time they fail with an UnplaceableError', async () => {
    const waiting = sg.map('where', items(5), { labels: ['tpu'] });
    const doomed = sg.mapResults('where', items(3), { labels: ['tpu'], placementTimeoutMs: 300 });
    const status = await sg.status();
    assert.equal(status.unplaceable, 8);
    const failed = await doomed;
    for (const result of failed) {
      assert.equal(result.ok, false);
      assert.equal(result.error?.name, 'UnplaceableError');
      assert.match(result.error!.message, /no connected server carries 'tpu' \(connected: .*gpu-box \[gpu, site=lab2\].*plain-box \[\]/);
    }
    assert.equal((await sg.status()).unplaceable, 5, 'the jobs without a placement time still wait');
    const tpu = await labelledServer('tpu-box', ['tpu']);
    try {
      await sg.connect(tpu.endpoint);
      assert.deepEqual(await waiting, Array(5).fill('tpu-box'), 'they ran once a server carrying the label joined');
      assert.equal((await sg.status()).unplaceable, 0);
    } finally {
      await tpu.stop();
      await waitUntil(() => tpu.proc.exitCode !== null || tpu.proc.signalCode !== null, 10_000, 'tpu server gone');
    }
  });

  test('bad labels are refused with a clear error', async () => {
    assert.throws(() => sg.addJob('where', items(1), { labels: ['two words'] }), /labels must be a list of labels such as \['gpu', 'site=lab2'\]/);
    await assert.rejects(sg.define('f', '() => 1', { labels: [''] }), /define labels must be a list of labels/);
    const refused = await runCli(['server', '--bind', 'tcp://127.0.0.1:0', '--label', 'a,b']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /'a,b' is not a label/);
  });
});
