/**
 * A worker's queue of several sessions' jobs (server/fair-queue.ts): the next job comes from the
 * session that has had the least run time for its weight. (Real servers: test/fair-share.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FairQueue } from '../server/fair-queue.js';

interface Job {
  controller: string;
  ms: number;
}

/** Runs `count` jobs off the queue, charging each its `ms`; returns their sessions in order. */
function run(queue: FairQueue<Job>, count: number): string {
  let order = '';
  for (let i = 0; i < count; i++) {
    const job = queue.shift()!;
    queue.charge(job.controller, job.ms);
    order += job.controller;
  }
  return order;
}

const fill = (queue: FairQueue<Job>, controller: string, count: number, ms: number) => {
  for (let i = 0; i < count; i++) queue.push({ controller, ms });
};

test('one session alone: its jobs in arrival order', () => {
  const queue = new FairQueue<Job>();
  for (let i = 0; i < 5; i++) queue.push({ controller: 'a', ms: i });
  assert.deepEqual(
    Array.from({ length: 5 }, () => queue.shift()!.ms),
    [0, 1, 2, 3, 4],
  );
  assert.equal(queue.shift(), undefined);
});

test('equal weights share run time, not job counts: one 20 ms job against twenty 1 ms ones', () => {
  const queue = new FairQueue<Job>();
  fill(queue, 'a', 100, 1);
  fill(queue, 'b', 5, 20);
  const order = run(queue, 63);
  assert.equal(order.split('b').length - 1, 3, `b ran 3 jobs of 20 ms while a ran 60 of 1 ms: ${order}`);
});

test('weights 3 and 1: three quarters and a quarter of the time', () => {
  const queue = new FairQueue<Job>();
  queue.setWeight('a', 3);
  fill(queue, 'a', 100, 2);
  fill(queue, 'b', 100, 2);
  const order = run(queue, 80);
  assert.equal(order.split('b').length - 1, 20, order);
});

test('a session that comes back from idle gets its turn at once, but no more than a little credit for the time it was away', () => {
  const queue = new FairQueue<Job>();
  fill(queue, 'a', 1000, 1);
  fill(queue, 'b', 1, 1);
  run(queue, 2); // b's job, then a's: both sessions have a pass now, b empty
  run(queue, 500); // a alone for 500 ms
  fill(queue, 'b', 200, 1);
  const order = run(queue, 200);
  const bFirst = order.indexOf('a');
  assert.ok(bFirst >= 40 && bFirst <= 60, `b ran ${bFirst} jobs ahead (its idle credit is 50 ms), not 500: ${order}`);
  assert.match(order.slice(bFirst), /^(ab|ba)+a?b?$/, 'then they take turns');
});

test('forget drops one session and its jobs; clear drops every job', () => {
  const queue = new FairQueue<Job>();
  fill(queue, 'a', 3, 1);
  fill(queue, 'b', 2, 1);
  queue.forget('a');
  assert.equal(queue.length, 2);
  assert.equal(run(queue, 2), 'bb');
  fill(queue, 'a', 3, 1);
  fill(queue, 'b', 3, 1);
  queue.clear();
  assert.equal(queue.length, 0);
  assert.equal(queue.shift(), undefined);
});
