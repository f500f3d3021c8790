/**
 * The controller's decisions without processes or sockets: what the scheduler hands which worker,
 * what it fails, what recovery puts back after a lost worker, and what the ledger forwards.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { packValues, toController, toServer, valuesOfRun, type ControllerToServer, type Frames, type LinkMessage } from '../protocol/index.js';
import { CallerRows, WorkerRowWriter } from '../protocol/rows.js';
import { Cluster, takeFromInflight, type ServerLink, type ServerSlot, type WorkerSlot } from '../controller/cluster.js';
import { attemptsOf, ChunkIndex, makeChunk, type Chunk, type Run } from '../controller/job-chunks.js';
import { JobLedger } from '../controller/job-ledger.js';
import { Recovery } from '../controller/recovery.js';
import { FAILED_PER_MESSAGE, MAX_WINDOW, MIN_BATCH_MS, MIN_WINDOW, Scheduler, type Rejections } from '../controller/scheduling.js';
import { buildStatus } from '../controller/status-report.js';
import { RateMeter } from '../controller/rate-meter.js';

/** A scheduler over a cluster with no servers yet; rejections are recorded as job ids, and not marked done. */
function world() {
  const cluster = new Cluster();
  const tooLarge: number[] = [];
  const cannotRun: number[][] = [];
  const unplaceable: number[][] = [];
  const rejections: Rejections = {
    tooLarge: (_slot, chunk, index) => void tooLarge.push(chunk.first + index),
    cannotRun: (_slot, jobs) => void cannotRun.push(jobs.map(([chunk, index]) => chunk.first + index)),
    unplaceable: (jobs) => void unplaceable.push(jobs.map(([chunk, index]) => chunk.first + index)),
  };
  const scheduler = new Scheduler(cluster, rejections);
  const chunks = new ChunkIndex();
  let nextId = 1;
  /** Queues jobs of `fn` whose values are `texts` (encoded JSON); returns their chunk. */
  const queue = (fn: string, texts: string[], avgRunMs?: number): Chunk => {
    const stats = scheduler.statsFor(fn);
    if (avgRunMs !== undefined) stats.avgRunMs = avgRunMs;
    const chunk = makeChunk(nextId, fn, 0, stats, packValues(texts), undefined, []);
    nextId += texts.length;
    chunks.add(chunk);
    scheduler.enqueue(chunk);
    return chunk;
  };
  return { cluster, scheduler, chunks, queue, tooLarge, cannotRun };
}

function addServer(cluster: Cluster, id: string, maxFrame = 1 << 30): ServerSlot {
  const link: ServerLink = { key: id, lastHello: 0, send: () => {} };
  cluster.links.set(id, link);
  return cluster.openSession(link, { id, host: `${id}-host`, pid: 1, functions: [] }, maxFrame);
}

function addWorker(cluster: Cluster, server: ServerSlot, w: number, functions: string[] = []): WorkerSlot {
  return cluster.addWorker(server, w, 100 + w, functions)!;
}

/** What the controller does with a batch, minus the send. */
function dispatch(slot: WorkerSlot, runs: Run[] | undefined): Array<[number, number]> {
  for (const run of runs ?? []) {
    slot.inflight.push(run);
    slot.inflightCount += run.end - run.start;
  }
  return spans(runs);
}

/** A batch as [first id, last id] per run. */
function spans(runs: Run[] | undefined): Array<[number, number]> {
  return (runs ?? []).map((run) => [run.chunk.first + run.start, run.chunk.first + run.end - 1]);
}

const texts = (count: number, bytes = 8) => Array.from({ length: count }, (_, i) => JSON.stringify([[String(i).padStart(bytes, 'x')]]));

test("a window is about 8 ms of work at the function's average run time, between its floor and its cap", () => {
  const { scheduler } = world();
  assert.equal(scheduler.window('unknown'), MIN_WINDOW, 'no run time yet: the smallest window');
  const cases: Array<[number, number]> = [
    [1, 8],
    [0.004, 2000],
    [50, MIN_WINDOW],
    [0.00001, 8000],
  ];
  for (const [avgRunMs, window] of cases) {
    scheduler.statsFor('f').avgRunMs = avgRunMs;
    assert.equal(scheduler.window('f'), window, `${avgRunMs} ms a job`);
  }
  assert.ok(scheduler.window('f') <= MAX_WINDOW);
});

test('batches follow the average run time: a full window at first, then a top-up only once half of it is free', () => {
  const { cluster, scheduler, queue } = world();
  const worker = addWorker(cluster, addServer(cluster, 's1'), 1);
  queue('f', texts(10_000), 0.004); // window 2,000
  assert.deepEqual(dispatch(worker, scheduler.nextBatch(worker)), [[1, 2000]], 'one run of a full window');
  assert.equal(scheduler.nextBatch(worker), undefined, 'a full window takes nothing');
  worker.inflightCount -= 999; // 999 results in: less than half free
  assert.equal(scheduler.nextBatch(worker), undefined, 'less than half free: no top-up yet');
  worker.inflightCount -= 1; // half free
  assert.deepEqual(dispatch(worker, scheduler.nextBatch(worker)), [[2001, 3000]], 'topped up by exactly what is free');
  assert.equal(scheduler.waiting, 7000);
});

test('beyond its first job a worker takes only its share of what waits, so the last jobs go to whoever frees up', () => {
  const { cluster, scheduler, queue } = world();
  const server = addServer(cluster, 's1');
  const workers = [1, 2, 3, 4].map((w) => addWorker(cluster, server, w));
  queue('f', texts(10), 4); // jobs of MIN_BATCH_MS or longer: no batch floor
  assert.deepEqual(dispatch(workers[0]!, scheduler.nextBatch(workers[0]!)), [[1, 2]], '10 jobs over 4 workers: 2');
  assert.deepEqual(dispatch(workers[1]!, scheduler.nextBatch(workers[1]!)), [[3, 4]], '8 left over 4: 2');
  assert.deepEqual(dispatch(workers[2]!, scheduler.nextBatch(workers[2]!)), [[5, 5]], '6 left over 4: 1');
  assert.deepEqual(dispatch(workers[3]!, scheduler.nextBatch(workers[3]!)), [[6, 6]], '5 left over 4: 1');
  assert.equal(scheduler.waiting, 4);
  const last = addWorker(cluster, server, 5);
  assert.deepEqual(spans(scheduler.nextBatch(last)), [[7, 7]], 'an idle worker always gets one job, even when its share rounds to none');
});

test('tiny jobs go at least MIN_BATCH_MS of work to a message, past their share: spread one by one over thousands of workers, messages would cost more than the jobs', () => {
  const { cluster, scheduler, queue } = world();
  const workers = Array.from({ length: 10 }, (_, s) => addServer(cluster, `s${s}`)).flatMap((server) => Array.from({ length: 100 }, (_, w) => addWorker(cluster, server, w + 1)));
  queue('tiny', texts(10_000), 0.001); // window 8,000; a share of 10,000 jobs over 1,000 workers is 10
  const least = MIN_BATCH_MS / 0.001;
  assert.deepEqual(dispatch(workers[0]!, scheduler.nextBatch(workers[0]!)), [[1, least]], 'MIN_BATCH_MS of work, not its share of 10');
  assert.deepEqual(dispatch(workers[1]!, scheduler.nextBatch(workers[1]!)), [[least + 1, 2 * least]]);
  const other = world();
  const many = Array.from({ length: 10 }, (_, s) => addServer(other.cluster, `s${s}`)).flatMap((server) => Array.from({ length: 100 }, (_, w) => addWorker(other.cluster, server, w + 1)));
  other.queue('short', texts(10_000), MIN_BATCH_MS / 4);
  assert.deepEqual(spans(other.scheduler.nextBatch(many[0]!)), [[1, 10]], 'jobs of a quarter of MIN_BATCH_MS: their share of 10, which is more than 4 such jobs');
});

test('hasWork says whether any job waits, suspects included: pumping everyone stops there rather than walk thousands of workers for nothing', () => {
  const { cluster, scheduler, queue } = recoveryWorld(1);
  const server = addServer(cluster, 's1');
  const worker = addWorker(cluster, server, 1);
  assert.equal(scheduler.hasWork, false);
  queue('f', texts(2), 4);
  assert.equal(scheduler.hasWork, true);
  dispatch(worker, scheduler.nextBatch(worker));
  assert.equal(scheduler.hasWork, false, 'all aboard');
  scheduler.suspect(worker.inflight[0]!);
  assert.equal(scheduler.hasWork, true, 'a suspect waits');
});

test("runs are cut so that no values frame passes the server's frame limit", () => {
  const { cluster, scheduler, queue, tooLarge } = world();
  const worker = addWorker(cluster, addServer(cluster, 's1', 350), 1);
  const chunk = queue('f', texts(10, 96), 0.001); // each value about 103 bytes with its comma: 3 to a frame
  const batch = scheduler.nextBatch(worker);
  assert.deepEqual(spans(batch), [
    [1, 3],
    [4, 6],
    [7, 9],
    [10, 10],
  ]);
  for (const run of batch!) assert.ok(valuesOfRun(chunk, run.start, run.end).length <= 350);
  assert.deepEqual(tooLarge, []);
  assert.equal(scheduler.waiting, 0);
});

test('a job whose frame alone passes the limit is taken out and failed; the jobs around it still go', () => {
  const { cluster, scheduler, queue, tooLarge } = world();
  const worker = addWorker(cluster, addServer(cluster, 's1', 350), 1);
  queue('f', [...texts(2), JSON.stringify([['y'.repeat(1000)]]), ...texts(2)], 0.001);
  assert.deepEqual(spans(scheduler.nextBatch(worker)), [
    [1, 2],
    [4, 5],
  ]);
  assert.deepEqual(tooLarge, [3], 'job 3 rejected once, though the sink did not mark it done');
  assert.equal(scheduler.waiting, 0);
  assert.equal(scheduler.nextBatch(worker), undefined);
});

test('jobs of a function only some workers preload go only to those; one nobody preloads goes anywhere (it fails in the worker, saying so)', () => {
  const { cluster, scheduler, queue } = world();
  const plain = addWorker(cluster, addServer(cluster, 's1'), 1);
  const preloading = addWorker(cluster, addServer(cluster, 's2'), 1, ['pre']);
  queue('pre', texts(4), 4);
  assert.equal(scheduler.nextBatch(plain), undefined, 'a worker without it takes none');
  assert.deepEqual(spans(scheduler.nextBatch(preloading)), [[1, 2]], 'its share: 4 jobs over 2 workers');
  cluster.definitions.set('pre', { name: 'pre', version: 1, source: '() => 1' });
  assert.deepEqual(spans(scheduler.nextBatch(plain)), [[3, 3]], 'once defined, any worker may run it');
  queue('ghost', texts(2), 4);
  assert.deepEqual(
    spans(scheduler.nextBatch(plain)),
    [
      [4, 4],
      [5, 5],
    ],
    'and a function nobody preloads or defined goes to any worker too',
  );
});

test('jobs of a function whose definition no server in session took fail together, a message per FAILED_PER_MESSAGE jobs; with another server that took it they wait for that one', () => {
  const { cluster, scheduler, queue, cannotRun } = world();
  cluster.definitions.set('big', { name: 'big', version: 2, source: 'x' });
  const small = addServer(cluster, 's1');
  small.unsendable.set('big', 'too large');
  const worker = addWorker(cluster, small, 1);
  queue('big', texts(FAILED_PER_MESSAGE + 5, 1), 0.001);
  assert.equal(scheduler.nextBatch(worker), undefined);
  assert.deepEqual(
    cannotRun.map((ids) => ids.length),
    [FAILED_PER_MESSAGE, 5],
  );
  assert.equal(cannotRun[1]!.at(-1), FAILED_PER_MESSAGE + 5);
  assert.equal(scheduler.waiting, 0);

  cannotRun.length = 0;
  const other = addWorker(cluster, addServer(cluster, 's2'), 1);
  queue('big', texts(4), 4);
  assert.equal(scheduler.nextBatch(worker), undefined, 'left to the server that took the definition');
  assert.deepEqual(cannotRun, []);
  assert.deepEqual(spans(scheduler.nextBatch(other)), [[FAILED_PER_MESSAGE + 6, FAILED_PER_MESSAGE + 7]]);
});

/** A world with recovery; failures are recorded as [job id, error name, message]. */
function recoveryWorld(retries: number, timeoutRetries = 0) {
  const w = world();
  const failed: Array<[number, string, string]> = [];
  const counters = { retried: 0, timedOut: 0 };
  const recovery = new Recovery(
    { retries, timeoutRetries },
    w.chunks,
    w.scheduler,
    {
      fail: (chunk, index, _dispatchedAt, _slot, name, message) => {
        chunk.done[index] = 1;
        chunk.open--;
        failed.push([chunk.first + index, name, message]);
      },
    },
    counters,
  );
  return { ...w, recovery, failed, counters };
}

test('a worker asked to go (refresh) gives its jobs back first in line, uncharged, without the ones already answered', () => {
  const { cluster, scheduler, queue, recovery, counters } = recoveryWorld(1);
  const server = addServer(cluster, 's1');
  const gone = addWorker(cluster, server, 1);
  const chunk = queue('f', texts(8), 0.004);
  assert.deepEqual(dispatch(gone, scheduler.nextBatch(gone)), [[1, 8]]);
  chunk.done[1] = 1; // job 2 answered before the worker went
  cluster.removeWorker(server, 1);
  recovery.workerLost(gone, 'refresh', 'worker 1 was refreshed');
  assert.equal(gone.inflightCount, 0);
  assert.equal(scheduler.waiting, 7);
  queue('f', texts(2), 0.004);
  const fresh = addWorker(cluster, server, 2);
  assert.deepEqual(
    spans(scheduler.nextBatch(fresh)),
    [
      [1, 1],
      [3, 8],
      [9, 10],
    ],
    'the lost jobs first, in order, then the newer ones',
  );
  assert.equal(attemptsOf(chunk, 0), 0);
  assert.equal(counters.retried, 0);
});

test('a worker that crashed with several jobs aboard: nobody is charged, each reruns alone on an isolated worker', () => {
  const { cluster, scheduler, queue, recovery, failed } = recoveryWorld(0);
  const server = addServer(cluster, 's1');
  const crashed = addWorker(cluster, server, 1);
  const chunk = queue('f', texts(3), 0.004);
  dispatch(crashed, scheduler.nextBatch(crashed));
  cluster.removeWorker(server, 1);
  recovery.workerLost(crashed, 'crash', 'worker 1 exited with code 1');
  assert.deepEqual(failed, []);
  assert.equal(scheduler.waiting, 3);
  const next = addWorker(cluster, server, 2);
  assert.deepEqual(dispatch(next, scheduler.nextBatch(next)), [[1, 1]], 'one suspect alone');
  assert.equal(next.isolating, true);
  queue('f', texts(5), 0.004);
  assert.equal(scheduler.nextBatch(next), undefined, 'an isolating worker gets nothing else');
  assert.equal(attemptsOf(chunk, 0), 0);
});

test('in a busy cluster a suspect still gets a worker: busy workers, one per suspect, take nothing more until they run dry, then each runs one alone', () => {
  const { cluster, scheduler, queue, recovery } = recoveryWorld(1);
  const server = addServer(cluster, 's1');
  const [crashed, b, c, d] = [1, 2, 3, 4].map((w) => addWorker(cluster, server, w));
  const chunk = queue('f', texts(100), 4); // window 2: a worker is topped up each time one job of two is done
  for (const worker of [crashed!, b!, c!, d!]) dispatch(worker, scheduler.nextBatch(worker));
  cluster.removeWorker(server, 1);
  recovery.workerLost(crashed!, 'crash', 'worker 1 exited with code 1'); // jobs 1 and 2 become suspects
  const answer = (worker: WorkerSlot) => {
    const run = worker.inflight[0]!;
    chunk.done[run.start] = 1;
    takeFromInflight(worker, chunk, run.start);
  };
  answer(b!);
  answer(c!);
  answer(d!);
  assert.equal(scheduler.nextBatch(b!), undefined, 'b is kept to run dry for a suspect, rather than topped up');
  assert.equal(scheduler.nextBatch(c!), undefined, 'and c, for the other');
  assert.deepEqual(dispatch(d!, scheduler.nextBatch(d!)), [[9, 9]], 'two suspects, two workers kept: d is topped up as usual');
  answer(b!);
  assert.deepEqual(dispatch(b!, scheduler.nextBatch(b!)), [[1, 1]], 'run dry, b takes a suspect alone');
  assert.equal(b!.isolating, true);
  answer(c!);
  assert.deepEqual(dispatch(c!, scheduler.nextBatch(c!)), [[2, 2]]);
  answer(d!);
  assert.deepEqual(dispatch(d!, scheduler.nextBatch(d!)), [[10, 10]], 'no suspect left: nobody is kept');
});

test('a worker that crashed with one job aboard: that job is charged, retried alone, and fails with WorkerDiedError once its retries are spent', () => {
  const { cluster, scheduler, queue, recovery, failed, counters } = recoveryWorld(1);
  const server = addServer(cluster, 's1');
  const chunk = queue('f', texts(1), 50);
  for (let attempt = 1; attempt <= 2; attempt++) {
    const worker = addWorker(cluster, server, attempt);
    assert.deepEqual(dispatch(worker, scheduler.nextBatch(worker)), [[1, 1]], `attempt ${attempt}`);
    cluster.removeWorker(server, attempt);
    recovery.workerLost(worker, 'crash', `worker ${attempt} was killed by SIGKILL`);
    assert.equal(attemptsOf(chunk, 0), attempt);
  }
  assert.equal(counters.retried, 1);
  assert.equal(failed.length, 1);
  assert.equal(failed[0]![0], 1);
  assert.equal(failed[0]![1], 'WorkerDiedError');
  assert.match(failed[0]![2], /worker 2 was killed by SIGKILL while running job 1 \('f'\); gave up after 2 attempt\(s\)/);
  assert.equal(scheduler.waiting, 0);
});

test('a timed-out job fails with JobTimeoutError, or is put back when timeout retries allow; the rest aboard are innocent and go first', () => {
  for (const timeoutRetries of [0, 1]) {
    const { cluster, scheduler, queue, recovery, failed, counters } = recoveryWorld(0, timeoutRetries);
    const server = addServer(cluster, 's1');
    const worker = addWorker(cluster, server, 1);
    const chunk = queue('f', texts(4), 0.004);
    dispatch(worker, scheduler.nextBatch(worker));
    cluster.removeWorker(server, 1);
    recovery.timedOut(worker, 2, 100, 'worker 1 was killed');
    recovery.workerLost(worker, 'timeout', 'worker 1 was killed');
    assert.equal(counters.timedOut, 1);
    assert.equal(attemptsOf(chunk, 1), 1);
    const next = addWorker(cluster, server, 2);
    if (timeoutRetries === 0) {
      assert.deepEqual(
        failed.map(([id, name]) => [id, name]),
        [[2, 'JobTimeoutError']],
      );
      assert.match(failed[0]![2], /ran past its timeout of 100 ms/);
      assert.deepEqual(spans(scheduler.nextBatch(next)), [
        [1, 1],
        [3, 4],
      ]);
    } else {
      assert.deepEqual(failed, []);
      assert.equal(counters.retried, 1);
      assert.deepEqual(
        spans(scheduler.nextBatch(next)),
        [
          [1, 1],
          [3, 4],
          [2, 2],
        ],
        'the innocent ones put back in front of it',
      );
    }
    assert.equal(attemptsOf(chunk, 0), 0, 'innocent jobs are not charged');
  }
});

test('the ledger checks results off in order, drops duplicates, forwards rewritten rows, and its status counts add up', () => {
  const cluster = new Cluster();
  const sent: Frames[] = [];
  const ledger = new JobLedger(cluster, (message) => void sent.push(message));
  const scheduler = new Scheduler(cluster, ledger);
  const server = addServer(cluster, 's1');
  const worker = addWorker(cluster, server, 1);
  const chunk = makeChunk(1, 'f', 0, scheduler.statsFor('f'), packValues(texts(5)), undefined, []);
  ledger.add(chunk);
  scheduler.enqueue(chunk);
  dispatch(worker, scheduler.nextBatch(worker)); // window 2: jobs 1 and 2
  const rows = new WorkerRowWriter();
  for (const [id, runMs] of [
    [1, 10],
    [2, 20],
    [1, 30],
  ] as const)
    rows.add(id, true, 0, 0, Date.now(), runMs, 0, true);
  const bytes = rows.bytes();
  ledger.results(server.info, worker, 1, [
    Buffer.from(JSON.stringify({ t: 'results', w: 1 })),
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    Buffer.from('[1,2,3]'),
    Buffer.from('[]'),
  ]);
  assert.equal(worker.inflightCount, 0);
  assert.equal(worker.done, 2);
  assert.equal(ledger.counters.duplicates, 1);
  assert.equal(chunk.stats.avgRunMs, 10 * 0.8 + 20 * 0.2);
  assert.equal(sent.length, 1);
  const [head, callerRows, values] = sent[0]!;
  assert.deepEqual(JSON.parse(String(head)), { t: 'results', server: 's1', host: 's1-host', w: 1, pid: 101 });
  const forwarded = new CallerRows(Buffer.from(callerRows as Uint8Array));
  assert.deepEqual([forwarded.job(0), forwarded.job(1)], [1, 2]);
  assert.equal(forwarded.attempts(0), 1);
  assert.equal(String(values), '[1,2,3]', 'values pass untouched');
  const status = buildStatus({ controllerId: 'c', listening: [], cluster, waiting: scheduler.waiting, unplaceable: scheduler.unplaceable, ledger });
  assert.deepEqual([status.queued, status.inflight, status.done, status.failed, status.duplicatesDropped, status.workers], [3, 0, 2, 0, 1, 1]);
  assert.equal(status.servers[0]!.workers![0]!.done, 2);

  ledger.tooLarge(worker, chunk, 4);
  const failure = new CallerRows(Buffer.from(sent[1]![1] as Uint8Array));
  assert.equal(failure.job(0), 5);
  assert.equal(failure.ok(0), false);
  assert.match(String(sent[1]![2]), /MessageTooLargeError/);
  assert.equal(ledger.counters.failed, 1);
  assert.equal(ledger.outstanding, 2);
});

test('takeFromInflight splits the run that holds a job answered out of order', () => {
  const { cluster, scheduler, queue } = world();
  const worker = addWorker(cluster, addServer(cluster, 's1'), 1);
  const chunk = queue('f', texts(6), 0.001);
  dispatch(worker, scheduler.nextBatch(worker));
  assert.ok(takeFromInflight(worker, chunk, 2));
  assert.equal(takeFromInflight(worker, chunk, 2), undefined, 'not held twice');
  assert.equal(worker.inflightCount, 5);
  assert.deepEqual(spans(worker.inflight), [
    [1, 2],
    [4, 6],
  ]);
});

test("a link's messages carry only that link's heads (checked by the compiler; the frames are the same)", () => {
  const ping: LinkMessage<ControllerToServer> = toServer({ t: 'ping', n: 1 }, 'x');
  assert.deepEqual(ping, ['{"t":"ping","n":1}', 'x']);
  // @ts-expect-error a server's head is not for a server
  const wrong: LinkMessage<ControllerToServer> = toController({ t: 'pong', n: 1 });
  // @ts-expect-error a caller's head is not a server's
  toServer({ t: 'jobs', first: 1, count: 1, fn: 'f' });
  assert.ok(wrong);
});

describe('the controller rate meter', () => {
  test('counts results per second over its window, forgets older seconds, and keeps a fixed number of buckets', () => {
    const start = 1_000_000_000_000; // a whole second
    const meter = new RateMeter(5, start);
    // 100 results a message, 10 messages a second, for 20 s: a million messages would cost the same.
    for (let ms = 0; ms < 20_000; ms += 100) meter.add(start + ms, 100);
    assert.equal(meter.size, 5);
    // At 20.0 s the window holds seconds 16-19 whole (4,000 results) and 0 ms of second 20: 4 s.
    assert.equal(meter.perSecond(start + 20_000), 1000);
    // Half a second later, with nothing new: 4,000 results over 4.5 s.
    assert.equal(meter.perSecond(start + 20_500), Math.round(4000 / 4.5));
    // Ten seconds of silence: nothing recent.
    assert.equal(meter.perSecond(start + 30_000), 0);
    // Early on, the rate is over the time since the start.
    const young = new RateMeter(5, start);
    young.add(start + 100, 50);
    assert.equal(young.perSecond(start + 500), 100);
  });
});
