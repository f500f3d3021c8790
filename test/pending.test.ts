import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PendingJobs } from '../caller/pending.js';

test('jobs are found by id across segments; unknown ids and duplicates are refused', () => {
  const pending = new PendingJobs();
  const a = pending.add(1, 3, 'f', 100);
  const b = pending.add(4, 1, 'g', 200);
  pending.add(5, 0, 'h', 300); // an empty call adds nothing
  assert.equal(pending.size, 4);
  assert.equal(pending.take(2), a);
  assert.equal(pending.take(2), undefined, 'a second result for job 2 is a duplicate');
  assert.equal(pending.take(4), b);
  assert.equal(pending.take(4), undefined, 'a one-job segment refuses its duplicate too');
  assert.equal(pending.take(0), undefined);
  assert.equal(pending.take(5), undefined);
  assert.equal(pending.size, 2);
  assert.deepEqual(
    [...pending.unanswered()].map(([id, segment]) => [id, segment.fn]),
    [
      [1, 'f'],
      [3, 'f'],
    ],
  );
  assert.equal(a.open, 2);
});

test('closed segments are swept and later ids still resolve', () => {
  const pending = new PendingJobs();
  for (let i = 0; i < 500; i++) pending.add(1 + 2 * i, 2, 'f', 0);
  for (let id = 1; id <= 800; id++) assert.ok(pending.take(id), `job ${id}`);
  assert.equal(pending.size, 200);
  for (let id = 1000; id >= 801; id--) assert.ok(pending.take(id), `job ${id}`);
  assert.equal(pending.size, 0);
  assert.equal([...pending.unanswered()].length, 0);
  assert.equal(pending.take(1000), undefined);
});

test('hasOpenClaims sees only claimed segments with jobs still open', () => {
  const pending = new PendingJobs();
  const claimed = pending.add(1, 2, 'f', 0);
  pending.add(3, 2, 'f', 0);
  assert.equal(pending.hasOpenClaims(), false);
  claimed.claim = { results: [], values: undefined, failure: undefined, total: 2, open: 2, failed: 0, settle: () => {} };
  assert.equal(pending.hasOpenClaims(), true);
  pending.take(1);
  pending.take(2);
  assert.equal(pending.hasOpenClaims(), false);
});
