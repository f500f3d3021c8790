/**
 * Where labelled jobs go, decided without processes: the scheduler gives jobs asking for labels
 * only to workers of servers carrying them all, counts those no server in session can take as
 * unplaceable, and fails them once their placement time is over. (Real servers: test/labels.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packValues } from '../protocol/index.js';
import { Cluster, type ServerLink, type ServerSlot } from '../controller/cluster.js';
import { makeChunk, type Chunk, type Placement } from '../controller/job-chunks.js';
import { Scheduler, type Rejections } from '../controller/scheduling.js';

function world() {
  const cluster = new Cluster();
  const unplaceable: number[][] = [];
  const rejections: Rejections = {
    tooLarge: () => assert.fail('nothing is too large here'),
    cannotRun: () => assert.fail('every function can run here'),
    unplaceable: (jobs) => void unplaceable.push(jobs.map(([chunk, index]) => chunk.first + index)),
  };
  const scheduler = new Scheduler(cluster, rejections);
  let nextId = 1;
  const queue = (fn: string, count: number, placement?: Placement): Chunk => {
    const chunk = makeChunk(nextId, fn, 0, scheduler.statsFor(fn), packValues(Array(count).fill('[[]]')), undefined, [], placement);
    nextId += count;
    scheduler.enqueue(chunk);
    return chunk;
  };
  const server = (id: string, labels?: string[]): ServerSlot => {
    const link: ServerLink = { key: id, lastHello: 0, send: () => {} };
    cluster.links.set(id, link);
    const slot = cluster.openSession(link, { id, host: id, pid: 1, functions: [], labels }, 1 << 30);
    cluster.addWorker(slot, 1, 100, []);
    return slot;
  };
  const lose = (slot: ServerSlot) => {
    cluster.removeWorker(slot, 1);
    slot.link.server = undefined;
  };
  return { cluster, scheduler, queue, server, lose, unplaceable };
}

const ids = (runs: ReturnType<Scheduler['nextBatch']>) => (runs ?? []).flatMap((run) => Array.from({ length: run.end - run.start }, (_, i) => run.chunk.first + run.start + i));

test('jobs asking for labels go only to servers carrying every one; others go anywhere', () => {
  const { scheduler, queue, server } = world();
  const plain = server('plain');
  const gpu = server('gpu', ['gpu']);
  const both = server('both', ['gpu', 'site=lab2']);
  queue('f', 1, { labels: ['gpu', 'site=lab2'] });
  assert.equal(scheduler.nextBatch(plain.workers.get(1)!), undefined);
  assert.equal(scheduler.nextBatch(gpu.workers.get(1)!), undefined, 'gpu alone is not enough');
  assert.deepEqual(ids(scheduler.nextBatch(both.workers.get(1)!)), [1]);
  queue('f', 1);
  assert.deepEqual(ids(scheduler.nextBatch(gpu.workers.get(1)!)), [2], 'a job without labels runs on a labelled server too');
});

test('a definition restricted to labels keeps its jobs on servers carrying them', () => {
  const { cluster, scheduler, queue, server } = world();
  const plain = server('plain');
  const gpu = server('gpu', ['gpu']);
  cluster.definitions.set('train', { name: 'train', version: 1, source: '() => 1', labels: ['gpu'] });
  queue('train', 1);
  assert.equal(scheduler.nextBatch(plain.workers.get(1)!), undefined);
  assert.deepEqual(ids(scheduler.nextBatch(gpu.workers.get(1)!)), [1]);
});

test('jobs no server in session can take are counted as unplaceable, and fail once their placement time is over', () => {
  const { scheduler, queue, server, lose, unplaceable } = world();
  const plain = server('plain');
  queue('f', 3, { labels: ['gpu'], placeBy: 1000 });
  queue('f', 2, { labels: ['gpu'] }); // no placement time: waits for ever
  queue('g', 4);
  assert.equal(scheduler.unplaceable, 5);
  assert.equal(scheduler.expirePlacements(999), 1000, 'not yet: the next look is at its placement time');
  assert.deepEqual(unplaceable, []);
  const gpu = server('gpu', ['gpu']);
  assert.equal(scheduler.unplaceable, 0, 'a server carrying the label joined');
  assert.equal(scheduler.expirePlacements(1001), 0, 'placeable now: nothing fails');
  assert.deepEqual(unplaceable, []);
  lose(gpu);
  assert.equal(scheduler.unplaceable, 5);
  assert.equal(scheduler.expirePlacements(1001), 0);
  assert.deepEqual(unplaceable, [[1, 2, 3]], 'the jobs with a placement time fail; the others wait');
  assert.equal(scheduler.unplaceable, 2);
  assert.equal(scheduler.waiting, 6);
  const batch = ids(scheduler.nextBatch(plain.workers.get(1)!));
  assert.ok(batch.length > 0 && batch.every((id) => id >= 6), `only g's jobs go to the server without labels: ${batch}`);
});
