import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { spawnWorker, WorkerPool, type PoolEvents } from '../server/worker-pool.js';
import { ipcEndpoint } from '../protocol/transport.js';
import type { DownCause } from '../protocol/index.js';

test('the pool takes prestarted workers first; one that died before it was taken is reported as a crash and replaced', async () => {
  const stdio = ['pipe', 'pipe', 'pipe'] as const;
  const alive = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: [...stdio] });
  const dead = spawn(process.execPath, ['-e', 'process.exit(3)'], { stdio: [...stdio] });
  await once(dead, 'exit');
  const downs: Array<{ w: number; cause: DownCause; code: number | null }> = [];
  let crashed!: () => void;
  const crashReported = new Promise<void>((resolve) => (crashed = resolve));
  const events: PoolEvents = {
    up: () => {},
    down: (worker, cause, code) => {
      downs.push({ w: worker.w, cause, code });
      if (cause === 'crash') crashed();
    },
    output: () => {},
    failing: () => {},
    spareDied: () => {},
    sparesChanged: () => {},
  };
  // Nothing listens on the endpoint: the replacement is a real worker that never gets to say it is ready.
  const pool = new WorkerPool(2, 'ipc:///nonexistent-tsgather-test/workers.sock', events, {}, [alive, dead]);
  try {
    pool.resize(2);
    assert.equal(pool.workers.get(1)?.pid, alive.pid, 'worker 1 is the live prestarted process');
    await crashReported;
    assert.deepEqual(downs, [{ w: 2, cause: 'crash', code: 3 }]);
    const successor = pool.workers.get(3);
    assert.ok(successor && successor.pid !== dead.pid && successor.pid !== alive.pid, "a new worker took the dead one's place");
  } finally {
    await pool.stop('shutdown');
  }
  assert.notEqual(alive.signalCode ?? alive.exitCode, null, 'stop() ended the prestarted worker too');
});

test('a spare told its id the moment it starts comes up as that worker, --module and all', async () => {
  const module = join(await mkdtemp(join(tmpdir(), 'tsgather-spare-')), 'greet.mjs');
  await writeFile(module, 'export const greet = (name) => `hello ${name}`;\n');
  const router = new zmq.Router({ linger: 0 });
  const endpoint = ipcEndpoint('spare-test');
  await router.bind(endpoint);
  const spare = spawnWorker(undefined, endpoint, { module });
  try {
    // Written at once, while it is still loading Node: an id it read and dropped would leave it waiting for ever.
    spare.stdin!.write('7\n');
    const [from, , head] = await router.receive();
    assert.equal(from!.toString(), 'w7');
    const ready = JSON.parse(head!.toString()) as { t: string; w: number; pid: number; functions: string[] };
    assert.deepEqual({ t: ready.t, w: ready.w, pid: ready.pid, functions: ready.functions }, { t: 'ready', w: 7, pid: spare.pid, functions: ['greet'] });
  } finally {
    spare.kill('SIGKILL');
    router.close();
  }
});
