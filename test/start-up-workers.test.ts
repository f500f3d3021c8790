/**
 * spawnScatterGather([url]) without `?workers=`: it resolves once the workers the running server
 * had up when it joined are all known, so a scatter right after start-up splits over every one of
 * them. (It used to resolve at the first worker, and such a scatter split over fewer, or was
 * refused, now and then.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawnScatterGather } from '../caller/index.js';
import { startServer, type RunningServer } from './helpers.js';

let server: RunningServer;
before(async () => {
  server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '4', '--spare-workers', '0', '--log-level', 'error']);
});
after(() => server.stop());

test('a running server: every one of its workers is there once spawnScatterGather resolves', async () => {
  // With the old rule the race was lost at the first or second start, three runs out of three.
  for (let start = 0; start < 10; start++) {
    const sg = await spawnScatterGather([server.endpoint], { echo: false, progress: false });
    try {
      assert.equal((await sg.status()).workers, 4, `start ${start}: all four workers known`);
      assert.equal(await sg.scatter('x', [1, 2, 3, 4, 5, 6, 7, 8]), 1);
      assert.deepEqual(await sg.gather('x'), [1, 2, 3, 4, 5, 6, 7, 8]);
    } finally {
      await sg.close();
    }
  }
});
