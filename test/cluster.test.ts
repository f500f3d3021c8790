/** Several compute servers as separate processes on different ports: the "machines" of one controller. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as zmq from 'zeromq';
import { fileURLToPath } from 'node:url';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { PROTOCOL_VERSION, readHead } from '../protocol/index.js';
import { alive, nextEvent, startServer, type RunningServer } from './helpers.js';

const fixture = fileURLToPath(new URL('./fixtures/jobs.js', import.meta.url));
const sleepFn = (ms: number) => new Promise((resolve) => setTimeout(() => resolve(process.pid), ms));

describe('two servers, then a third that dials in', () => {
  let a: RunningServer;
  let b: RunningServer;
  let c: RunningServer | undefined;
  let sg: ScatterGather;

  before(async () => {
    [a, b] = await Promise.all([startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1', '--name', 'alpha']), startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1', '--name', 'beta'])]);
    sg = await spawnScatterGather([a.endpoint, b.endpoint], { listen: 'tcp://127.0.0.1:*', echo: false, heartbeatMs: 200, heartbeatTimeoutMs: 1000 });
    await sg.define('sleep', sleepFn);
  });
  after(async () => {
    await sg.close();
    await Promise.all([a.stop(), b.stop(), c?.stop()]);
  });

  test('both servers receive work from one controller', async () => {
    const results = await sg.mapResults(
      'sleep',
      Array.from({ length: 40 }, () => [[5]] as [number[]]),
    );
    assert.ok(results.every((r) => r.ok));
    assert.deepEqual(new Set(results.map((r) => r.worker.server)), new Set(['alpha', 'beta']));
  });

  test('a server that starts later and dials in joins, gets the definitions, and gets work at once', async () => {
    assert.ok(sg.listenAddress, 'the controller reports where servers can dial in');
    const joined = nextEvent(sg, 'worker-up', (d) => d.server === 'gamma');
    c = await startServer(['--connect', sg.listenAddress!, '--workers', '1', '--name', 'gamma'], { waitForEndpoint: false });
    await joined;
    const results = await sg.mapResults(
      'sleep',
      Array.from({ length: 60 }, () => [[10]] as [number[]]),
    );
    assert.ok(
      results.every((r) => r.ok),
      'sleep, defined before gamma existed, runs there too',
    );
    assert.ok(results.some((r) => r.worker.server === 'gamma'));
    const status = await sg.status();
    assert.equal(status.workers, 3);
  });

  test('a server that is killed mid-run does not strand its jobs: every job gets exactly one result', async () => {
    const ids = sg.addJob(
      'sleep',
      Array.from({ length: 80 }, () => [[20]]),
    );
    const first = await sg.waitForResult();
    const workerPid =
      first.find((r) => r.worker.server === 'alpha')?.worker.pid ??
      ((await sg.status()).servers as Array<{ id: string; workers: Array<{ pid: number }> }>).find((s) => s.id === 'alpha')!.workers[0]!.pid;
    const lost = nextEvent(sg, 'server-down', (d) => d.server === 'alpha');
    await a.stop('SIGKILL');
    await lost;
    const rest = await sg.waitForResult({ all: true });
    const got = [...first, ...rest].map((r) => r.id).sort((x, y) => x - y);
    assert.deepEqual(got, ids);
    assert.ok(rest.every((r) => r.ok));
    assert.equal(alive(workerPid), false, "the dead server's worker did not outlive it");
  });
});

describe('handshake and bad input on a server port', () => {
  let server: RunningServer;

  before(async () => {
    server = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1']);
  });
  after(() => server.stop());

  test('a peer of another protocol version gets a clear refusal; malformed messages are logged and dropped', async () => {
    const peer = new zmq.Dealer({ linger: 0, receiveTimeout: 5000 });
    peer.connect(server.endpoint);
    const ask = async (...frames: Array<string | Buffer>) => {
      await peer.send(frames);
      const [head] = await peer.receive();
      return readHead(head) as { t: string; reason?: string };
    };
    const refusal = await ask(JSON.stringify({ t: 'hello', v: PROTOCOL_VERSION + 1, controller: 'future' }));
    assert.equal(refusal.t, 'refused');
    assert.match(refusal.reason!, new RegExp(`protocol version ${PROTOCOL_VERSION + 1} refused: this server speaks version ${PROTOCOL_VERSION}`));
    assert.match((await ask('not json at all')).reason!, /not JSON/);
    assert.match((await ask(Buffer.from([0xff, 0x00, 0x13]))).reason!, /not JSON/);
    assert.match((await ask('{"no":"type"}')).reason!, /no type/);
    assert.match((await ask(JSON.stringify({ t: 'jobs', w: 1 }), '{}', '[]')).reason!, /before hello/);
    peer.close();
    // Bytes that are not even ZMTP.
    await new Promise<void>((resolve) => {
      const port = Number(new URL(server.endpoint.replace('tcp://', 'http://')).port);
      // A ZMTP/1.0-tolerant listener may keep such a connection open, so we hang up once the bytes are sent.
      const raw = net.connect(port, '127.0.0.1', () => raw.end(Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\xff garbage'), () => raw.destroy()));
      raw.on('close', () => resolve());
    });
    assert.ok(server.log.join('').includes('malformed message dropped'));

    const sg = await spawnScatterGather([server.endpoint], { echo: false });
    try {
      await sg.define('add', (x: number, y: number) => x + y);
      assert.equal(await sg.submit('add', [2, 3]), 5, 'the server kept serving');
    } finally {
      await sg.close();
    }
  });

  test('a controller asking for more workers than --max-workers gets the limit, and the server says so', async () => {
    const limited = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1', '--max-workers', '2']);
    const sg = await spawnScatterGather([`${limited.endpoint}?workers=5000`], { echo: false });
    try {
      assert.equal((await sg.status()).workers, 2);
      assert.match(limited.log.join(''), /more workers than --max-workers allows/);
    } finally {
      await sg.close();
      await limited.stop();
    }
  });

  test('an unreachable server makes spawnScatterGather fail with a clear error, not hang', async () => {
    await assert.rejects(spawnScatterGather(['tcp://127.0.0.1:1'], { connectTimeoutMs: 500, echo: false }), /did not come up within 500 ms: no answer from tcp:\/\/127\.0\.0\.1:1/);
  });
});

describe('preloaded module named by the URL path', () => {
  test('--module functions run by name, and a URL path makes one the default', async () => {
    const server = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1', '--module', fixture]);
    const sg = await spawnScatterGather([`${server.endpoint}/all_series?workers=2`], { echo: false });
    try {
      assert.equal(sg.defaultFunction, 'all_series');
      const [id] = sg.addJob([[[3], { start: 10 }]]);
      const [result] = await sg.waitForResult({ all: true });
      assert.equal(result!.id, id);
      assert.deepEqual(result!.value, [10, 11, 12]);
      assert.equal(result!.version, 0, 'preloaded functions report version 0');
      assert.match(await sg.submit<string>('whoami'), /^preloaded in \d+$/);
      assert.equal((await sg.status()).workers, 2, 'the ?workers= query resized the server');
    } finally {
      await sg.close();
      await server.stop();
    }
  });
});

describe('a server that takes frames of at most 1 MB (--max-message-mb 1)', () => {
  test('jobs travel in runs whose frames fit, and a job too large for the server fails with a MessageTooLargeError instead of hanging', async () => {
    const server = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1', '--max-message-mb', '1']);
    const sg = await spawnScatterGather([server.endpoint], { echo: false });
    try {
      await sg.define('len', (x: string | Uint8Array) => x.length);
      const text = 'x'.repeat(50_000);
      const lengths = await sg.map(
        'len',
        Array.from({ length: 200 }, () => [[text]] as [unknown[]]),
      );
      assert.deepEqual(lengths, Array(200).fill(50_000), '10 MB of arguments, in frames of under 1 MB');
      const [small, big] = await sg.mapResults('len', [[[new Uint8Array(10)]], [[new Uint8Array(2 * 1024 * 1024)]]]);
      assert.equal(small!.value, 10);
      assert.equal(big!.ok, false);
      assert.equal(big!.error!.name, 'MessageTooLargeError');
      assert.match(big!.error!.message, /has a 2\.0 MB frame; server .+ takes frames of at most 1\.0 MB \(its --max-message-mb\)/);
      assert.equal(await sg.submit('len', ['abc']), 3, 'the link is still up');
    } finally {
      await sg.close();
      await server.stop();
    }
  });

  test('a definition too large for the server is not sent: its jobs fail with a MessageTooLargeError, the link stays up, and one that fits replaces it', async () => {
    const server = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1', '--max-message-mb', '1']);
    const sg = await spawnScatterGather([server.endpoint], { echo: false });
    const events: Array<{ kind: string; detail: Record<string, unknown> }> = [];
    sg.on('event', (event) => events.push(event));
    try {
      await sg.define('len', (x: string) => x.length);
      await sg.define('huge', `() => ${JSON.stringify('x'.repeat(2 * 1024 * 1024))}.length`);
      const [result] = await sg.mapResults('huge', [[[]]]);
      assert.equal(result!.ok, false);
      assert.equal(result!.error!.name, 'MessageTooLargeError');
      assert.match(result!.error!.message, /cannot run there: the definition of 'huge' \(v1\) is 2\.0 MB; server .+ takes frames of at most 1\.0 MB \(its --max-message-mb\)/);
      assert.deepEqual(
        events.filter((event) => event.kind === 'definition-too-large').map((event) => event.detail.fn),
        ['huge'],
      );
      assert.equal(await sg.submit('len', ['abc']), 3, 'the link is still up, with the definitions that fit');
      await sg.define('huge', () => 'small now');
      assert.equal(await sg.submit('huge'), 'small now');
    } finally {
      await sg.close();
      await server.stop();
    }
  });

  test('jobs of a definition too large for one server run on a server that took it; once that one is gone, they fail instead of waiting', async () => {
    const small = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1', '--max-message-mb', '1']);
    const large = await startServer(['--bind', 'tcp://127.0.0.1:*', '--workers', '1']);
    const sg = await spawnScatterGather([small.endpoint, large.endpoint], { echo: false });
    try {
      await sg.define('huge', `() => ${JSON.stringify('x'.repeat(2 * 1024 * 1024))}.length + process.pid * 0`);
      const results = await sg.mapResults(
        'huge',
        Array.from({ length: 40 }, () => [[]] as [unknown[]]),
      );
      assert.ok(
        results.every((result) => result.ok && result.value === 2 * 1024 * 1024),
        'every job ran on the server that took the definition',
      );
      assert.deepEqual(new Set(results.map((result) => result.worker.server)).size, 1);
      const gone = nextEvent(sg, 'server-down');
      await large.stop();
      await gone;
      const [late] = await sg.mapResults('huge', [[[]]]);
      assert.equal(late!.error?.name, 'MessageTooLargeError');
    } finally {
      await sg.close();
      await small.stop();
      await large.stop();
    }
  });
});
