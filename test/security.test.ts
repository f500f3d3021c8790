/**
 * The security story in one place, with real processes and sockets: CurveZMQ between controllers
 * and servers in both directions of dialling, key files, refusals (wrong key, no key, wrong
 * server key, an exposed port without keys), secrets kept out of logs, argv and workers, the
 * message size limit, and the kernel's HMAC signatures.
 */
import type { KernelMessage } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as zmq from 'zeromq';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { KernelClient, parentId } from '../kernel/client.js';
import { launchKernel } from '../kernel/launch.js';
import { encode, newMessage, Signer } from '../kernel/wire.js';
import { parseServerUrl } from '../protocol/server-url.js';
import { curveClientOptions, frames, keyToHex, parsePublicKeys, PROTOCOL_VERSION, readKeyPairFile, type KeyPair } from '../protocol/index.js';
import { z85Encode } from '../protocol/z85.js';
import { alive, cli, logMatches, nextEvent, startServer, type RunningServer } from './helpers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tsg-security-'));

function tsgather(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

/** Makes a key pair with the CLI, as a user would. */
function generate(name: string): { secretFile: string; publicFile: string; pair: KeyPair } {
  const run = tsgather('keys', 'generate', '--out', dir, '--name', name);
  assert.equal(run.status, 0, run.stderr);
  const secretFile = path.join(dir, `${name}.key`);
  return { secretFile, publicFile: path.join(dir, `${name}.pub`), pair: readKeyPairFile(secretFile) };
}

/** Resolves when the server process exits, with its code and everything it printed. */
async function exited(server: RunningServer): Promise<{ code: number | null; stderr: string; stdout: string }> {
  let stdout = '';
  server.proc.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  const [code] = (await once(server.proc, 'exit')) as [number | null];
  return { code, stderr: server.log.join(''), stdout };
}

const square = (x: number) => x * x;

describe('security', { timeout: 120_000 }, () => {
  let serverKeys: ReturnType<typeof generate>;
  let controllerKeys: ReturnType<typeof generate>;
  let strangerKeys: ReturnType<typeof generate>;
  let server: RunningServer;
  let sg: ScatterGather;
  const servers: RunningServer[] = [];
  const others: ScatterGather[] = [];

  before(async () => {
    serverKeys = generate('server');
    controllerKeys = generate('controller');
    strangerKeys = generate('stranger');
    writeFileSync(path.join(dir, 'authorized_keys'), `# controllers admitted\n${readFileSync(controllerKeys.publicFile, 'utf8')}`);
    server = await startServer([
      '--bind',
      'tcp://127.0.0.1:*',
      '--workers',
      '1',
      '--log-level',
      'trace',
      '--max-message-mb',
      '1',
      '--key-file',
      serverKeys.secretFile,
      '--authorized-keys',
      path.join(dir, 'authorized_keys'),
    ]);
    servers.push(server);
    sg = await spawnScatterGather([`${server.endpoint}?key=${keyToHex(serverKeys.pair.publicKey)}`], { keyFile: controllerKeys.secretFile, echo: false });
    await sg.define('square', square);
  });

  after(async () => {
    for (const other of others) await other.close().catch(() => {});
    await sg?.close();
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('keys generate writes the secret file 0600 and the public file 0644, and never overwrites', () => {
    assert.equal(statSync(controllerKeys.secretFile).mode & 0o777, 0o600);
    assert.equal(statSync(controllerKeys.publicFile).mode & 0o777, 0o644);
    const again = tsgather('keys', 'generate', '--out', dir, '--name', 'controller');
    assert.equal(again.status, 2);
    assert.match(again.stderr, /exists; not overwriting it/);
    assert.deepEqual(readKeyPairFile(controllerKeys.secretFile), controllerKeys.pair, 'the first pair is intact');
    const shown = tsgather('keys', 'show', controllerKeys.publicFile);
    assert.match(shown.stdout, new RegExp(`\\?key=${keyToHex(controllerKeys.pair.publicKey)}`));
  });

  test('keys travel in URLs as hex or percent-encoded Z85; authorized-keys files take labels, comments and keys starting with #', () => {
    const raw = Buffer.alloc(32, 0xff);
    raw.writeUInt32BE(0xfffffff0, 0); // Z85 of these bytes holds '#' and other URL-unsafe characters
    const key = z85Encode(raw);
    assert.match(key, /[#%&+?]/);
    assert.equal(parseServerUrl(`tcp://h:1?workers=2&key=${keyToHex(key)}`).serverKey, key);
    assert.equal(parseServerUrl(`tcp://h:1/fn?key=${encodeURIComponent(key)}`).serverKey, key);
    assert.throws(() => parseServerUrl('tcp://h:1?key=short'), /key must be 64 hex digits or percent-encoded Z85/);
    const hashKey = `#${key.slice(1)}`;
    const listed = parsePublicKeys(`# admitted controllers\n\n${key} laptop\n${hashKey}\n  ${keyToHex(key)}  hex-form\n`, 'authorized_keys');
    assert.deepEqual(listed, [key, hashKey, key]);
    assert.throws(() => parsePublicKeys('not a key\n', 'authorized_keys'), /authorized_keys line 1 is not a public key/);
  });

  test('a secret key file others can read is refused, without printing the key', async () => {
    const loose = generate('loose');
    chmodSync(loose.secretFile, 0o644);
    const refused = await exited(await startServer(['--bind', 'tcp://127.0.0.1:*', '--key-file', loose.secretFile, '--authorized-keys', loose.publicFile], { waitForEndpoint: false }));
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /accessible by others \(mode 0644\); run: chmod 600/);
    assert.ok(!refused.stderr.includes(loose.pair.secretKey));
  });

  test('an authorized controller runs jobs over tcp with CURVE', async () => {
    assert.deepEqual(await sg.map('square', [[[3]], [[4]], [[5]]]), [9, 16, 25]);
    assert.match(server.log.join(''), /controller key accepted/);
  });

  test('a controller whose key is not authorized is refused; the authorized one keeps working', async () => {
    await assert.rejects(
      spawnScatterGather([`${server.endpoint}?key=${keyToHex(serverKeys.pair.publicKey)}`], { keyFile: strangerKeys.secretFile, echo: false, connectTimeoutMs: 10_000 }),
      /refused the connection: server tcp:\/\/127\.0\.0\.1:\d+ refused this controller's key/,
    );
    await logMatches(server, /controller refused: its key is not in --authorized-keys/);
    assert.ok(alive(server.proc.pid!));
    assert.deepEqual(await sg.map('square', [[[6]]]), [36]);
  });

  test('a controller without keys is refused by a server with keys', async () => {
    await assert.rejects(spawnScatterGather([server.endpoint], { echo: false, connectTimeoutMs: 10_000 }), /server tcp:\/\/127\.0\.0\.1:\d+ requires keys/);
    assert.deepEqual(await sg.map('square', [[[7]]]), [49]);
  });

  test('a controller given the wrong server key does not connect, and says which server and why', async () => {
    await assert.rejects(
      spawnScatterGather([server.endpoint], { keyFile: controllerKeys.secretFile, serverKey: strangerKeys.publicFile, echo: false, connectTimeoutMs: 3000 }),
      /did not come up within 3000 ms: no answer from tcp:\/\/127\.0\.0\.1:\d+ \(security handshake with tcp:\/\/127\.0\.0\.1:\d+ failed .*is the server key the one/,
    );
    assert.deepEqual(await sg.map('square', [[[8]]]), [64]);
  });

  test('a server refuses to listen beyond loopback without keys; --insecure starts it with a warning', async () => {
    const refused = await exited(await startServer(['--bind', 'tcp://0.0.0.0:*', '--workers', '1'], { waitForEndpoint: false }));
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /refusing to serve tcp:\/\/0\.0\.0\.0:\* without keys.*--insecure/);
    assert.doesNotMatch(refused.stdout, /listening on/);
    const insecure = await startServer(['--bind', 'tcp://0.0.0.0:*', '--workers', '1', '--insecure']);
    servers.push(insecure);
    assert.match(insecure.endpoint, /^tcp:\/\/0\.0\.0\.0:\d+$/);
    assert.match(insecure.log.join(''), /INSECURE: serving links beyond this machine/);
    await insecure.stop();
  });

  test('a controller refuses to dial or listen beyond loopback without keys unless insecure', async () => {
    await assert.rejects(spawnScatterGather(['tcp://192.0.2.1:5555'], { echo: false }), /refusing to dial tcp:\/\/192\.0\.2\.1:5555 without its server key/);
    await assert.rejects(spawnScatterGather([], { embedded: false, listen: 'tcp://0.0.0.0:*', echo: false }), /refusing to listen on tcp:\/\/0\.0\.0\.0:\* without keys/);
  });

  test('a server dials in to a controller with CURVE; a server with an unknown key is refused', async () => {
    const dialServer = generate('dialling-server');
    const listening = await spawnScatterGather([], { embedded: false, listen: 'tcp://127.0.0.1:*', keyFile: controllerKeys.secretFile, authorizedKeys: [dialServer.pair.publicKey], echo: false });
    others.push(listening);
    const address = listening.listenAddress!;
    const up = nextEvent(listening, 'worker-up');
    const joining = await startServer(['--connect', address, '--workers', '1', '--key-file', dialServer.secretFile, '--controller-key', controllerKeys.publicFile, '--log-level', 'trace'], {
      waitForEndpoint: false,
    });
    servers.push(joining);
    await up;
    await listening.define('square', square);
    assert.deepEqual(await listening.map('square', [[[9]]]), [81]);

    const refusedEvent = nextEvent(listening, 'peer-refused');
    const intruder = await startServer(['--connect', address, '--workers', '1', '--key-file', strangerKeys.secretFile, '--controller-key', controllerKeys.publicFile], { waitForEndpoint: false });
    servers.push(intruder);
    const refused = await refusedEvent;
    assert.match(String(refused.reason), /not in authorizedKeys/);
    await logMatches(intruder, /refused this server's key/);
    assert.equal(((await listening.status()).servers as unknown[]).length, 1, 'only the authorized server joined');
    assert.deepEqual(await listening.map('square', [[[10]]]), [100]);
    // The refused server's greeting can never be delivered: it still stops at once when told to.
    await listening.close();
    await intruder.stop();
    assert.equal(intruder.proc.exitCode, 0);
  });

  test('a frame larger than the limit is dropped with its connection; the server keeps serving', async () => {
    const rogue = new zmq.Dealer({ linger: 0, routingId: 'rogue', ...curveClientOptions(controllerKeys.pair, serverKeys.pair.publicKey) });
    const dropped = new Promise((resolve) => rogue.events.on('disconnect', resolve));
    const connected = new Promise((resolve) => rogue.events.on('handshake', resolve));
    rogue.connect(server.endpoint);
    await connected;
    await rogue.send([...frames({ t: 'hello', v: PROTOCOL_VERSION, controller: 'rogue' }), Buffer.alloc(2 * 1024 * 1024, 1)]);
    await dropped;
    rogue.close();
    assert.ok(alive(server.proc.pid!));
    assert.deepEqual(await sg.map('square', [[[11]], [[12]]]), [121, 144]);
  });

  test('the embedded cluster has no link to attack and keeps key material away from workers', async () => {
    const local = await spawnScatterGather([], { workers: 1, echo: false, keyPair: strangerKeys.pair });
    others.push(local);
    const status = await local.status();
    assert.deepEqual(status.listening, [], 'the embedded server is linked in-process: the controller listens nowhere');
    const worker = (status.servers as Array<{ workers: Array<{ pid: number }> }>)[0]!.workers[0]!;
    const controllerPid = (local as unknown as { child: { pid: number } }).child.pid;
    const parentPid = Number(
      readFileSync(`/proc/${worker.pid}/stat`, 'utf8')
        .replace(/^.*\) /, '')
        .split(' ')[1],
    );
    assert.equal(parentPid, controllerPid, 'workers are forked by the controller process that hosts the embedded server');
    const workerEnviron = readFileSync(`/proc/${worker.pid}/environ`, 'utf8');
    assert.doesNotMatch(workerEnviron, /TSGATHER_KEY_PAIR|TSGATHER_CONTROLLER=/, 'workers do not inherit key material');
    assert.ok(!workerEnviron.includes(strangerKeys.pair.secretKey), "the secret key is not in a worker's environment");
    await local.define('secrets', () => Object.keys(process.env).filter((name) => name === 'TSGATHER_KEY_PAIR' || name === 'TSGATHER_CONTROLLER'));
    assert.deepEqual(await local.submit('secrets'), []);
  });

  test('no secret key appears in what a controller and its embedded server print at trace level', async () => {
    const fixture = new URL('./fixtures/keyed-controller.js', import.meta.url).pathname;
    const run = (urls: string[], options: Record<string, unknown>) => {
      const child = spawn(process.execPath, [fixture, JSON.stringify({ urls, options })], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
      child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
      return once(child, 'exit').then(([code]) => ({ code: code as number | null, output }));
    };
    const dialled = await run([`${server.endpoint}?key=${keyToHex(serverKeys.pair.publicKey)}`], { keyFile: controllerKeys.secretFile });
    assert.equal(dialled.code, 0, dialled.output);
    assert.match(dialled.output, /squares \[1,4,9\]/);
    assert.match(dialled.output, /"level":(10|20|30)/, 'the controller logged at trace level');
    const embedded = await run([], { workers: 1, keyPair: strangerKeys.pair });
    assert.equal(embedded.code, 0, embedded.output);
    for (const { output } of [dialled, embedded]) {
      for (const keys of [serverKeys, controllerKeys, strangerKeys]) assert.ok(!output.includes(keys.pair.secretKey), 'a secret key leaked into controller output');
    }
  });

  test('no secret key appears in any server log', () => {
    const logs = servers.map((s) => s.log.join('')).join('\n');
    assert.ok(logs.length > 0);
    for (const keys of [serverKeys, controllerKeys, strangerKeys]) assert.ok(!logs.includes(keys.pair.secretKey), 'a secret key leaked into a log');
  });

  test('the kernel drops messages with a wrong or missing HMAC signature, or a tampered body', async () => {
    const kernel = await launchKernel();
    const client = KernelClient.connect(kernel.info);
    try {
      await client.waitForReady();
      const forged: string[] = [];
      const stop = client.on('shell', (message) => {
        const parent = parentId(message);
        if (parent) forged.push(parent);
      });
      const badKey = newMessage<KernelMessage.IInfoRequestMsg>({ msgType: 'kernel_info_request', channel: 'shell', content: {}, session: client.session });
      client.sendFrames('shell', encode(new Signer('not-the-key'), badKey));
      const unsigned = newMessage<KernelMessage.IInfoRequestMsg>({ msgType: 'kernel_info_request', channel: 'shell', content: {}, session: client.session });
      client.sendFrames('shell', encode(new Signer(''), unsigned));
      const tampered = newMessage<KernelMessage.IExecuteRequestMsg>({ msgType: 'execute_request', channel: 'shell', content: { code: '1', silent: false }, session: client.session });
      const signed = encode(new Signer(kernel.info.key), tampered);
      signed[signed.length - 1] = JSON.stringify({ code: 'process.exit(3)', silent: false });
      client.sendFrames('shell', signed);
      // Shell requests are answered in order: once this good one is answered, the others never will be.
      const reply = await client.request<KernelMessage.IInfoReplyMsg>('shell', 'kernel_info_request', {});
      stop();
      assert.equal(reply.content.status, 'ok');
      const ignored = [badKey, unsigned, tampered].map((m) => m.header.msg_id).filter((id) => forged.includes(id));
      assert.deepEqual(ignored, []);
      assert.ok(alive(kernel.child.pid!), 'the tampered body did not run');
    } finally {
      client.close();
      await kernel.kill();
    }
  });
});
