/**
 * The controller's side of mapReduce onServers, without processes or sockets: folded acks free a
 * worker's window without completing anything, a partial completes its jobs whole or not at all,
 * and a lost worker's folded jobs go back to the queue.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { packValues, type Frames } from '../protocol/index.js';
import { CallerRows, RowKind, WorkerRowWriter } from '../protocol/rows.js';
import { Cluster, type ServerLink, type WorkerSlot } from '../controller/cluster.js';
import { attemptsOf, makeChunk, type Chunk } from '../controller/job-chunks.js';
import { JobLedger } from '../controller/job-ledger.js';
import { Recovery } from '../controller/recovery.js';
import { Scheduler } from '../controller/scheduling.js';

const texts = (count: number) => Array.from({ length: count }, (_, i) => JSON.stringify([[i]]));

/** A ledger, scheduler and recovery over one server with two workers, and one chunk of `count` fold jobs queued. */
function world(count: number) {
  const cluster = new Cluster();
  const sent: Frames[] = [];
  const ledger = new JobLedger(cluster, (message) => void sent.push(message));
  const scheduler = new Scheduler(cluster, ledger);
  ledger.requeue = (run) => scheduler.requeueFront(run);
  const recovery = new Recovery({ retries: 1, timeoutRetries: 0 }, ledger.chunks, scheduler, ledger, ledger.counters);
  const link: ServerLink = { key: 's1', lastHello: 0, send: () => {} };
  cluster.links.set('s1', link);
  const server = cluster.openSession(link, { id: 's1', host: 's1-host', pid: 1, functions: [] }, 1 << 30);
  const workers = [cluster.addWorker(server, 1, 101, [])!, cluster.addWorker(server, 2, 102, [])!];
  scheduler.statsFor('f').avgRunMs = 0.001; // a window large enough for every job
  const chunk = makeChunk(1, 'f', 0, scheduler.statsFor('f'), packValues(texts(count)), undefined, [], { fold: ['k', 1, 1000] });
  ledger.add(chunk);
  scheduler.enqueue(chunk);
  /** Hands `slot` its next batch, as the controller does; returns the ids sent. */
  const dispatch = (slot: WorkerSlot): number[] => {
    const ids: number[] = [];
    for (const run of scheduler.nextBatch(slot) ?? []) {
      slot.inflight.push(run);
      slot.inflightCount += run.end - run.start;
      for (let i = run.start; i < run.end; i++) ids.push(chunk.first + i);
    }
    return ids;
  };
  /** A results message from `slot`: rows of [job, kind], ok, their values `null` except a partial's. */
  const results = (slot: WorkerSlot | undefined, rows: Array<[number, RowKind]>, w = 1) => {
    const writer = new WorkerRowWriter();
    for (const [job, kind] of rows) writer.add(job, true, 0, 0, Date.now(), 1, 1, true, kind);
    const bytes = writer.bytes();
    const values = rows.map(([, kind]) => (kind === RowKind.partial ? '42' : 'null'));
    ledger.results(server.info, slot, w, [
      Buffer.from('{"t":"results","w":1}'),
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      Buffer.from(`[${values.join(',')}]`),
      Buffer.from('[]'),
    ]);
  };
  return { cluster, ledger, scheduler, recovery, workers, chunk, sent, dispatch, results };
}

const forwarded = (message: Frames): Array<[number, RowKind]> => {
  const rows = new CallerRows(Buffer.from(message[1] as Uint8Array));
  return Array.from({ length: rows.count }, (_, row) => [rows.job(row), rows.kind(row)]);
};

function done(chunk: Chunk): number[] {
  return [...chunk.done].flatMap((flag, i) => (flag ? [chunk.first + i] : []));
}

test('folded acks free the window and tell the caller nothing; a partial completes every job it covers, in one message', () => {
  const { workers, chunk, sent, dispatch, results, ledger } = world(6);
  const [worker] = workers as [WorkerSlot];
  const ids = dispatch(worker).slice(0, 3);
  results(
    worker,
    ids.map((id) => [id, RowKind.folded]),
  );
  assert.equal(sent.length, 0, 'nothing for the caller yet');
  assert.deepEqual(done(chunk), []);
  assert.equal(
    worker.folded.reduce((n, run) => n + run.end - run.start, 0),
    3,
    'held as folded, in one run',
  );
  assert.equal(worker.folded.length, 1);
  results(worker, [
    [ids[0]!, RowKind.partial],
    [ids[1]!, RowKind.covered],
    [ids[2]!, RowKind.covered],
  ]);
  assert.deepEqual(done(chunk), ids);
  assert.equal(worker.folded.length, 0);
  assert.equal(sent.length, 1);
  assert.deepEqual(forwarded(sent[0]!), [
    [ids[0], RowKind.partial],
    [ids[1], RowKind.covered],
    [ids[2], RowKind.covered],
  ]);
  assert.equal(String(sent[0]![2]), '[42,null,null]', 'the values pass untouched');
  assert.equal(ledger.counters.done, 3);
  results(worker, [
    [ids[0]!, RowKind.partial],
    [ids[1]!, RowKind.covered],
  ]);
  assert.equal(sent.length, 1, 'a partial of jobs already done is dropped');
  assert.equal(ledger.counters.duplicates, 2);
});

test('a partial that covers a job it may not (done already, or not folded on that worker) is dropped whole, and its open jobs rerun', () => {
  const { workers, chunk, sent, dispatch, results, scheduler, ledger } = world(4);
  const [worker] = workers as [WorkerSlot];
  const ids = dispatch(worker);
  results(worker, [
    [ids[0]!, RowKind.folded],
    [ids[1]!, RowKind.folded],
  ]);
  const waiting = scheduler.waiting;
  // Job ids[2] is still in flight, not folded: the partial may not cover it.
  results(worker, [
    [ids[0]!, RowKind.partial],
    [ids[1]!, RowKind.covered],
    [ids[2]!, RowKind.covered],
  ]);
  assert.equal(sent.length, 0);
  assert.deepEqual(done(chunk), []);
  assert.equal(worker.folded.length, 0, 'its folded jobs are not the worker’s any more');
  assert.equal(scheduler.waiting - waiting, 2, 'they are queued again');
  assert.equal(ledger.counters.duplicates, 1, 'the job in flight, not those run again');
  assert.equal(ledger.counters.retried, 2);
  results(worker, [[ids[3]!, RowKind.covered]]);
  assert.deepEqual(done(chunk), [], 'a covered row alone completes nothing');
});

test('a lost worker’s folded jobs go back to the queue uncharged; a late partial from it is dropped', () => {
  const { workers, chunk, dispatch, results, scheduler, recovery, cluster, ledger, sent } = world(5);
  const [worker] = workers as [WorkerSlot];
  const ids = dispatch(worker);
  results(worker, [
    [ids[0]!, RowKind.folded],
    [ids[1]!, RowKind.folded],
    [ids[2]!, RowKind.folded],
  ]);
  const waiting = scheduler.waiting;
  const retried = ledger.counters.retried;
  cluster.removeWorker(worker.server, worker.w);
  recovery.workerLost(worker, 'crash', 'worker 1 was killed by SIGKILL');
  assert.equal(worker.folded.length, 0);
  assert.equal(scheduler.waiting - waiting, 5, 'the 3 folded jobs are queued again, as are the 2 that were in flight (as suspects)');
  assert.equal(ledger.counters.retried - retried, 3);
  assert.deepEqual(
    ids.slice(0, 3).map((id) => attemptsOf(chunk, id - chunk.first)),
    [0, 0, 0],
    'not charged',
  );
  results(undefined, [
    [ids[0]!, RowKind.partial],
    [ids[1]!, RowKind.covered],
  ]);
  assert.equal(sent.length, 0, 'a partial from a worker given up on is dropped');
  assert.deepEqual(done(chunk), []);
});
