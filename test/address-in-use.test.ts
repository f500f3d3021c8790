/** An address already in use is named in the error: a server's --bind and a controller's `listen`. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readPid } from '../cli/pidfile.js';
import { runCli, runProgram } from './cli-helpers.js';
import { stopDaemonsIn } from './helpers.js';

let dir: string;
/** Holds the port every test here tries to listen on. */
let holder: net.Server;
let address: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgather-in-use-'));
  holder = net.createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  address = `tcp://127.0.0.1:${(holder.address() as net.AddressInfo).port}`;
});
after(async () => {
  holder.close();
  await stopDaemonsIn(dir);
  await rm(dir, { recursive: true, force: true });
});

const inUse = () => `cannot listen on ${address.replaceAll('.', '\\.')}: address already in use`;

describe('a listen address already in use', { timeout: 60_000 }, () => {
  test('tsgather server --bind exits 1 naming the address, in the foreground and as a daemon (leaving no pid file)', async () => {
    const foreground = await runCli(['server', '--bind', address, '--workers', '1', '--spare-workers', '0', '--log-level', 'error']);
    assert.equal(foreground.code, 1);
    assert.match(foreground.stderr, new RegExp(`^error: ${inUse()}$`, 'm'));

    const pidfile = join(dir, 'busy.pid');
    const daemon = await runCli(['server', '--daemon', '--pidfile', pidfile, '--log-file', join(dir, 'busy.log'), '--bind', address, '--workers', '1', '--spare-workers', '0']);
    assert.equal(daemon.code, 1);
    assert.match(daemon.stderr, new RegExp(`^error: server did not start: ${inUse()}$`, 'm'));
    assert.equal(readPid(pidfile), undefined);
  });

  test('spawnScatterGather({ listen }) rejects at once naming the address, and so does the controller log', async () => {
    // Its own process, to read the controller's stderr (which the caller's is).
    const index = join(import.meta.dirname, '../caller/index.js');
    const script = join(dir, 'listen.mjs');
    await writeFile(
      script,
      `import { spawnScatterGather } from ${JSON.stringify(index)};\n` +
        `try {\n  await spawnScatterGather([], { workers: 1, listen: ${JSON.stringify(address)}, echo: false });\n  console.log('started');\n} catch (error) {\n  console.log('rejected: ' + error.message);\n}\n`,
    );
    const outcome = await runProgram(process.execPath, [script]);
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.match(outcome.stdout, new RegExp(`^rejected: the controller could not start: ${inUse()}$`, 'm'));
    assert.doesNotMatch(outcome.stdout, /did not come up within/, 'rejected when the controller failed, not at the time-out');
    assert.match(outcome.stderr, new RegExp(`"reason":"${inUse()}","msg":"controller could not start"`));
  });
});
