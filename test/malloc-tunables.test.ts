/**
 * The malloc tunables every process tsgather starts gets (see protocol/malloc-tunables.ts): added to
 * what the environment sets, never over it. Checked inside the workers of a real embedded cluster.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { MALLOC_TUNABLES, withMallocTunables } from '../runtime/malloc-tunables.js';

const ours = Object.entries(MALLOC_TUNABLES).map(([name, value]) => `${name}=${value}`);

test('the tunables are added to an environment without them, and adding them twice changes nothing', () => {
  const once = withMallocTunables({ PATH: '/bin' });
  assert.equal(once.GLIBC_TUNABLES, ours.join(':'));
  assert.equal(once.PATH, '/bin');
  assert.deepEqual(withMallocTunables(once), once);
});

test("a tunable the environment sets wins over ours; its other tunables are kept, and the caller's env object is not changed", () => {
  const env = { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1000:glibc.malloc.arena_max=2' };
  const tuned = withMallocTunables(env);
  assert.equal(tuned.GLIBC_TUNABLES, `glibc.malloc.trim_threshold=1000:glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=${MALLOC_TUNABLES['glibc.malloc.mmap_threshold']}`);
  assert.equal(env.GLIBC_TUNABLES, 'glibc.malloc.trim_threshold=1000:glibc.malloc.arena_max=2');
});

// Read from inside the process: glibc rewrites the string it leaves in /proc/<pid>/environ.
test('workers start with the tunables, on top of the caller environment', { timeout: 60_000 }, async () => {
  const saved = process.env.GLIBC_TUNABLES;
  process.env.GLIBC_TUNABLES = 'glibc.malloc.trim_threshold=1000';
  let sg: ScatterGather | undefined;
  try {
    sg = await spawnScatterGather([], { workers: 2, spareWorkers: 0, echo: false });
  } finally {
    if (saved === undefined) delete process.env.GLIBC_TUNABLES;
    else process.env.GLIBC_TUNABLES = saved;
  }
  try {
    await sg.define('tunables', () => process.env.GLIBC_TUNABLES);
    const seen = await sg.map<string>('tunables', [[[]], [[]], [[]], [[]]]);
    const expected = `glibc.malloc.trim_threshold=1000:glibc.malloc.mmap_threshold=${MALLOC_TUNABLES['glibc.malloc.mmap_threshold']}`;
    assert.deepEqual(new Set(seen), new Set([expected]));
  } finally {
    await sg.close();
  }
});
