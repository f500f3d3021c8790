/**
 * Garbage at both ends: thousands of random, truncated, oversized and wrong-version messages (and
 * raw bytes that are not even ZMTP) thrown at a compute server's port and at a controller's listen
 * port while real work runs through both. Nothing crashes, nothing hangs, the real work completes
 * with the right values. The peers are unauthenticated and the links keyless (loopback), so the
 * garbage reaches the message parsers rather than being refused at a CURVE handshake.
 * Deterministic: the seed is printed, and TSG_FUZZ_SEED replays one.
 * Then well-formed messages with bad stream numbers (sg.stream credits and parts heads) from a
 * greeted peer, a caller and a server dialling in: each refused with a clear error, none acted on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as zmq from 'zeromq';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { PROTOCOL_VERSION, readHead, RowKind, WorkerRows } from '../protocol/index.js';
import { startServer, waitUntil, type RunningServer } from './helpers.js';
import { withScriptedPool, type ScriptedServer } from './scripted-server.js';

const SEED = Number(process.env.TSG_FUZZ_SEED ?? 0x5eed2026);
const MAX_MESSAGE_MB = 1;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Garbage {
  constructor(private readonly random: () => number) {}

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  pick<T>(list: T[]): T {
    return list[this.int(list.length)]!;
  }

  bytes(n: number): Buffer {
    const buffer = Buffer.alloc(n);
    for (let i = 0; i < n; i++) buffer[i] = this.int(256);
    return buffer;
  }

  junkValue(): unknown {
    return this.pick<() => unknown>([() => null, () => this.int(1e9) - 5e8, () => 'x'.repeat(this.int(40)), () => [], () => ({}), () => -1, () => 1.5, () => true, () => [[this.int(5), 'f', 0]]])();
  }

  /** A head that parses, of a real or made-up type, with fields of the wrong kinds (never a valid hello). */
  head(types: string[]): string {
    const head: Record<string, unknown> = { t: this.pick(types) };
    for (const field of ['v', 'w', 'id', 'n', 'pid', 'cmd', 'server', 'functions', 'controller', 'cause', 'reason', 'job']) {
      if (this.random() < 0.4) head[field] = this.junkValue();
    }
    if (head.t === 'hello' || head.t === 'join' || head.t === 'welcome') head.v = this.pick([0, PROTOCOL_VERSION + 1, 99, '2', null, -PROTOCOL_VERSION]);
    return JSON.stringify(head);
  }

  frame(types: string[]): Buffer | string {
    switch (this.int(8)) {
      case 0:
        return this.bytes(this.int(200));
      case 1: {
        const text = this.head(types);
        return text.slice(0, this.int(text.length)); // truncated
      }
      case 2:
        return Buffer.alloc(0);
      case 3:
        return JSON.stringify({ t: this.pick(types), padding: 'p'.repeat(70 * 1024) }); // a head over the 64 KB head limit
      case 4:
        return JSON.stringify(this.junkValue());
      default:
        return this.head(types);
    }
  }

  message(types: string[]): Array<Buffer | string> {
    if (this.random() < 0.01) return [this.head(types), Buffer.alloc((MAX_MESSAGE_MB + 1) * 1024 * 1024)]; // oversized
    return Array.from({ length: 1 + this.int(5) }, () => this.frame(types));
  }
}

const serverTypes = ['hello', 'ping', 'command', 'bye', 'refused', 'define', 'jobs', 'nonsense', ''];
const controllerTypes = ['join', 'welcome', 'refused', 'pong', 'worker-up', 'worker-down', 'worker-output', 'command-done', 'error', 'server-bye', 'results', 'nonsense'];

/** Sends `count` garbage messages from `peers` fresh DEALER sockets; replies are never read. */
async function dealerStorm(endpoint: string, peers: number, count: number, types: string[], garbage: Garbage): Promise<number> {
  let sent = 0;
  await Promise.all(
    Array.from({ length: peers }, async () => {
      const socket = new zmq.Dealer({ linger: 0, sendTimeout: 10_000 });
      socket.connect(endpoint);
      try {
        for (let i = 0; i < count / peers; i++) {
          await socket.send(garbage.message(types));
          sent++;
        }
      } finally {
        socket.close();
      }
    }),
  );
  return sent;
}

/** Raw TCP connections writing bytes that are not ZMTP, or a ZMTP greeting followed by lies. */
async function rawStorm(port: number, connections: number, garbage: Garbage): Promise<void> {
  const greeting = Buffer.concat([Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0]), Buffer.from('NULL'.padEnd(20, '\0')), Buffer.alloc(32)]);
  for (let i = 0; i < connections; i++) {
    const payload = garbage.pick([
      () => garbage.bytes(1 + garbage.int(4096)),
      () => Buffer.concat([greeting.subarray(0, garbage.int(greeting.length))]), // truncated greeting
      () => Buffer.concat([greeting, Buffer.from([0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), garbage.bytes(64)]), // a frame claiming 2^64 bytes
      () => Buffer.concat([greeting, garbage.bytes(512)]),
      () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    ])();
    await new Promise<void>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end(payload, () => socket.destroy()));
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
  }
}

const portOf = (endpoint: string) => Number(/:(\d+)$/.exec(endpoint)![1]);

describe(`fuzzing a server port and a controller port (seed ${SEED}; replay with TSG_FUZZ_SEED=${SEED})`, () => {
  let server: RunningServer;
  let sg: ScatterGather;

  before(async () => {
    console.log(`fuzz seed: ${SEED}`);
    server = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '2', '--name', 'target', '--max-message-mb', String(MAX_MESSAGE_MB), '--log-level', 'warn']);
    sg = await spawnScatterGather([server.endpoint], { listen: 'tcp://127.0.0.1:*', echo: false, heartbeatMs: 200, heartbeatTimeoutMs: 2000 });
    await sg.define('square', async (n: number) => {
      await new Promise((resolve) => setImmediate(resolve));
      return n * n;
    });
  });
  after(async () => {
    await sg?.close();
    await server?.stop();
  });

  test('thousands of bad messages at both ports while 3000 real jobs run: no crash, no hang, every job right', async () => {
    const garbage = new Garbage(prng(SEED));
    const lost: unknown[] = [];
    const watch = ({ kind, detail }: { kind: string; detail: unknown }) => kind === 'server-down' && lost.push(detail);
    sg.on('event', watch);
    const work = sg.map<number>(
      'square',
      Array.from({ length: 3000 }, (_, i) => [[i]] as [number[]]),
    );
    const [atServer, atController] = await Promise.all([
      dealerStorm(server.endpoint, 8, 4000, serverTypes, garbage),
      dealerStorm(sg.listenAddress!, 8, 3000, controllerTypes, garbage),
      rawStorm(portOf(server.endpoint), 150, garbage),
      rawStorm(portOf(sg.listenAddress!), 150, garbage),
    ]);
    console.log(`sent ${atServer} messages to the server, ${atController} to the controller, 300 raw connections`);
    assert.deepEqual(
      await work,
      Array.from({ length: 3000 }, (_, i) => i * i),
    );
    assert.equal(server.proc.exitCode, null, 'the server is still running');
    assert.ok(server.log.join('').includes('malformed message dropped'), 'the server saw (and dropped) the garbage');
    // Both still serve: a fresh controller on the server, and fresh work on this controller.
    assert.equal(await sg.submit('square', [12]), 144);
    sg.off('event', watch);
    assert.deepEqual(lost, [], 'the real server never went silent: garbage peers that never read cannot stall its replies');
    const status = await sg.status();
    assert.equal(status.workers, 2, 'the real server stayed in session throughout, and no fuzz peer passed for a server with workers');
    assert.equal((status.servers as unknown[]).length, 1);
    const other = await spawnScatterGather([server.endpoint], { echo: false });
    try {
      await other.define('add', (x: number, y: number) => x + y);
      assert.equal(await other.submit('add', [2, 3]), 5);
    } finally {
      await other.close();
    }
  });
});

/** A DEALER that reads every message it gets, handing each head and frames to `on`; close() ends it. */
function peer(
  endpoint: string,
  on: (head: { t: string; [field: string]: unknown }, frames: Buffer[], send: (...frames: Array<string | Buffer>) => void) => void,
): { send: (...frames: Array<string | Buffer>) => void; close: () => void } {
  const socket = new zmq.Dealer({ linger: 0 });
  socket.connect(endpoint);
  let queue = Promise.resolve();
  const send = (...frames: Array<string | Buffer>) => void (queue = queue.then(() => socket.send(frames)).catch(() => {}));
  void (async () => {
    try {
      for await (const frames of socket) on(readHead(frames[0]) as unknown as { t: string; [field: string]: unknown }, frames.slice(1), send);
    } catch {
      // closed
    }
  })();
  return { send, close: () => socket.close() };
}

/** A server that dials in to a controller and, for w 1, answers its first 'jobs' with `onJobs`; `onCredit` hears the credits it gets. */
function rogueServer(endpoint: string, onJobs: (send: (...frames: Array<string | Buffer>) => void) => void, onCredit: (n: number) => void = () => {}): { close: () => void } {
  const info = { id: 'rogue', host: 'rogue', pid: process.pid, functions: [] };
  const rogue = peer(endpoint, (head, _frames, send) => {
    if (head.t === 'hello') {
      send(JSON.stringify({ t: 'welcome', v: PROTOCOL_VERSION, server: info, workers: [], size: 1 }));
      send(JSON.stringify({ t: 'worker-up', w: 1, pid: process.pid, functions: [] }));
    } else if (head.t === 'ping') send(JSON.stringify({ t: 'pong', n: head.n }));
    else if (head.t === 'jobs') onJobs(send);
    else if (head.t === 'credit') onCredit(head.n as number);
  });
  rogue.send(JSON.stringify({ t: 'join', v: PROTOCOL_VERSION, server: info }));
  return rogue;
}

describe('malformed stream numbers from a greeted peer are refused with a clear error', () => {
  test('a worker refuses a credit whose job or n is not a whole number (n ≥ 0): its stderr says so', async () => {
    const server = await startServer(['--bind', 'tcp://127.0.0.1:0', '--workers', '1', '--spare-workers', '0', '--log-level', 'error']);
    const complaints: string[] = [];
    let workerUp: (w: number) => void = () => {};
    const up = new Promise<number>((resolve) => (workerUp = resolve));
    const rogue = peer(server.endpoint, (head, frames) => {
      if (head.t === 'worker-up') workerUp(head.w as number);
      if (head.t === 'worker-output' && frames[0]!.toString().includes('bad message dropped')) complaints.push(frames[0]!.toString());
    });
    try {
      rogue.send(JSON.stringify({ t: 'hello', v: PROTOCOL_VERSION, controller: 'rogue', workers: 1 }));
      const w = await up;
      for (const [job, n] of [
        [1, 'x'],
        [1, -1],
        [1.5, 3],
        [1, null],
        [1, 2 ** 53],
      ])
        rogue.send(JSON.stringify({ t: 'credit', w, job, n }));
      rogue.send(JSON.stringify({ t: 'credit', w, job: 1, n: 2 ** 31 })); // well formed (a stop): no complaint
      rogue.send(JSON.stringify({ t: 'credit', w, job: 'one', n: 1 })); // after it: once refused, the one before was read
      await waitUntil(() => complaints.join('').split('bad message dropped').length - 1 >= 6, 15_000, 'the worker refusing 6 credits').catch(() => {});
      const text = complaints.join('');
      assert.equal(text.split('bad message dropped').length - 1, 6, `6 refusals, not: ${text}`);
      assert.match(text, /a credit needs a whole job number and a whole part count n ≥ 0 \(got job 1, n "x"\)/);
    } finally {
      rogue.close();
      await server.stop();
    }
  });

  test('a controller drops parts whose n or count is not a whole number (n ≥ 0, count ≥ 1): the reader never sees them', async () => {
    const sg = await spawnScatterGather([], { embedded: false, listen: 'tcp://127.0.0.1:0', echo: false, progress: false });
    // Given the stream's job (this pool's first), it answers with bad parts heads, then good ones.
    const rogue = rogueServer(sg.listenAddress!, (send) => {
      for (const [n, count] of [
        ['x', 1],
        [-1, 1],
        [null, 1],
        [0.5, 1],
        [0, 0],
        [0, 'one'],
      ])
        send(JSON.stringify({ t: 'parts', w: 1, job: 1, n, count }), JSON.stringify(['bad']));
      send(JSON.stringify({ t: 'parts', w: 1, job: 1, n: 0, count: 2 }), JSON.stringify(['a', 'b']));
    });
    try {
      await sg.define('parts', `async function* () { yield 'a'; yield 'b'; }`);
      const parts: unknown[] = [];
      for await (const part of sg.stream('parts', [])) if (parts.push(part) === 2) break;
      assert.deepEqual(parts, ['a', 'b']);
    } finally {
      rogue.close();
      await sg.close();
    }
  });

  test('parts the caller cannot read end the stream with an error after the parts before, and stop the job', async () => {
    const sg = await spawnScatterGather([], { embedded: false, listen: 'tcp://127.0.0.1:0', echo: false, progress: false });
    const credits: number[] = [];
    // Part 0, then a batch whose values frame does not hold the count its head says.
    const rogue = rogueServer(
      sg.listenAddress!,
      (send) => {
        send(JSON.stringify({ t: 'parts', w: 1, job: 1, n: 0, count: 1 }), JSON.stringify(['a']));
        send(JSON.stringify({ t: 'parts', w: 1, job: 1, n: 1, count: 2 }), JSON.stringify(['b']));
      },
      (n) => credits.push(n),
    );
    try {
      await sg.define('parts', `async function* () { yield 'a'; yield 'b'; yield 'c'; }`);
      const parts: unknown[] = [];
      await assert.rejects(
        (async () => {
          for await (const part of sg.stream('parts', [])) parts.push(part);
        })(),
        /parts 1 to 2 of streamed job 1 could not be read: parts frame of job 1 does not hold its 2 parts/,
      );
      assert.deepEqual(parts, ['a']);
      await waitUntil(() => credits.includes(2 ** 31), 15_000, 'the job told to stop (STREAM_STOPPED)');
    } finally {
      rogue.close();
      await sg.close();
    }
  });

  test("a controller refuses a caller's credit whose job or n is not a whole number: a caller-message-error event says so", async () => {
    const sg = await spawnScatterGather([], { embedded: false, echo: false, progress: false });
    const reasons: string[] = [];
    sg.on('event', ({ kind, detail }) => kind === 'caller-message-error' && reasons.push(String(detail.reason)));
    // The pool's own credit sender, as a buggy or hostile caller would use it: no public API sends a bad credit.
    const { streams } = sg as unknown as { streams: { sendCredit: (job: unknown, n: unknown) => void } };
    try {
      for (const [job, n] of [
        [1, 'x'],
        [1, -1],
        ['1', 1],
      ])
        streams.sendCredit(job, n);
      await waitUntil(() => reasons.length >= 3, 15_000, 'three caller-message-error events').catch(() => {});
      assert.equal(reasons.length, 3, `3 refusals, not: ${reasons.join(' | ')}`);
      assert.match(reasons[0]!, /a credit needs a whole job number and a whole part count n ≥ 0 \(got job 1, n "x"\)/);
    } finally {
      await sg.close();
    }
  });
});

describe('result rows a controller refuses, from a scripted server', () => {
  let sg: ScatterGather;
  let peer: ScriptedServer;
  withScriptedPool((pool) => ({ sg, peer } = pool));

  test('a row of no RowKind, and folded or partial rows for a job not folded, are refused whole; the real result is taken', async () => {
    sg.addJob('square', [[[2]], [[3]]]);
    const { ids, fold } = await peer.jobs();
    assert.equal(fold, undefined);
    const [a, b] = ids as [number, number];
    await peer.results([
      [a, 7, '"kind 7"'],
      [b, RowKind.result, '9'],
    ]);
    await peer.results([[a, RowKind.folded, 'null']]);
    await peer.results([[a, RowKind.partial, '"a partial"']]);
    await peer.results([
      [a, RowKind.result, '4'],
      [b, RowKind.result, '9'],
    ]);
    const results = await sg.waitForResult({ all: true });
    assert.deepEqual(
      results.map((result) => [result.id, result.value]),
      [
        [a, 4],
        [b, 9],
      ],
      'nothing of the refused messages reached the caller, not even their good rows',
    );
  });
});

test('a job run whose fold tag is malformed is refused by the worker, as the controller refuses it from a caller', async () => {
  const server = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1', '--spare-workers', '0', '--name', 'folds', '--log-level', 'warn']);
  const socket = new zmq.Dealer({ linger: 0 });
  try {
    socket.connect(server.endpoint);
    await socket.send(JSON.stringify({ t: 'hello', v: PROTOCOL_VERSION, controller: 'scripted-controller', workers: 1 }));
    const answered: number[] = [];
    let w: number | undefined;
    for await (const [head, rows] of socket) {
      const message = JSON.parse(head!.toString()) as { t: string; w?: number };
      if (message.t === 'worker-up' && w === undefined) {
        w = message.w!;
        const jobs = (id: number, fold?: unknown) => socket.send([JSON.stringify({ t: 'jobs', w }), JSON.stringify([[id, 1, 'square', 0, 0, ...(fold ? [0, fold] : [])]]), '[[2]]']);
        await jobs(1, ['', 1, 10]); // an empty key
        await jobs(2, ['k'.repeat(300), 2, 10]); // longer than a function name may be
        await jobs(3, ['k', 3, 10, 'more']);
        await jobs(4); // no fold: it fails ('square' is not defined there), and says so
      }
      if (message.t !== 'results') continue;
      const read = new WorkerRows(rows!);
      for (let row = 0; row < read.count; row++) answered.push(read.job(row));
      if (answered.includes(4)) break;
    }
    assert.deepEqual(answered, [4], 'the jobs with a malformed fold never ran');
  } finally {
    socket.close();
    await server.stop();
  }
});
