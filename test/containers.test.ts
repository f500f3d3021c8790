/**
 * The server image, built and run for real with podman: deploy/Containerfile, unchanged, built on a
 * Debian base made here with mmdebstrap and this machine's Node (build arguments). Two containers
 * dial in to a controller with keys mounted read-only; one is stopped mid-run (podman stop: SIGTERM,
 * the server drains) and nothing is lost; the other exits by itself once the controller is gone.
 */
import assert from 'node:assert/strict';
import { chown, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { spawnScatterGather, type JobOutput, type JobResult, type ScatterGather } from '../caller/index.js';
import { runCli } from './cli-helpers.js';
import { nextEvent } from './helpers.js';
import { Podman } from './podman.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const tag = `tsg${process.pid}`;
const image = `localhost/${tag}-server:test`;
/** The image's user (deploy/Containerfile). */
const NODE_UID = 1000;

let podman: Podman | undefined;
let keys: string;

before(
  async () => {
    podman = await Podman.create();
    const base = `localhost/${tag}-base:test`;
    const node = `localhost/${tag}-node:test`;
    await Promise.all([podman.importDebianBase(base), podman.importNode(node)]);
    await podman.build(repo, join(repo, 'deploy', 'Containerfile'), image, { BASE_IMAGE: base, NODE_IMAGE: node });

    // The server's key pair and the controller's public key, in a folder the container's user owns:
    // mounted read-only, the secret never on a command line.
    keys = join(podman.dir, 'keys');
    for (const name of ['server', 'controller']) {
      const made = await runCli(['keys', 'generate', '--out', keys, '--name', name]);
      assert.equal(made.code, 0, made.stderr);
    }
    const mounted = join(keys, 'mounted');
    await mkdir(mounted, { mode: 0o700 });
    await copyFile(join(keys, 'server.key'), join(mounted, 'server.key'));
    await copyFile(join(keys, 'controller.pub'), join(mounted, 'controller.pub'));
    for (const path of [mounted, join(mounted, 'server.key'), join(mounted, 'controller.pub')]) await chown(path, NODE_UID, NODE_UID);
  },
  { timeout: 15 * 60_000 },
);

after(async () => {
  await podman?.remove();
});

/** `podman run -d` of the image: a server that dials `controller`, named `box-$BOX` by the server itself. */
async function startContainer(name: string, box: string, controller: string): Promise<void> {
  await podman!.run([
    'run',
    '--detach',
    '--name',
    name,
    '--network',
    'host',
    '--env',
    `BOX=${box}`,
    '--volume',
    `${join(keys, 'mounted')}:/keys:ro`,
    '--stop-timeout',
    '30',
    image,
    '--connect',
    controller,
    '--key-file',
    '/keys/server.key',
    '--controller-key',
    '/keys/controller.pub',
    '--workers',
    '2',
    '--spare-workers',
    '0',
    '--drain-seconds',
    '20',
    '--idle-exit',
    '2',
    '--name',
    'box-$BOX',
    '--log-level',
    'info',
  ]);
}

/** Resolves once each named server has this many workers up. */
function workersUp(sg: ScatterGather, servers: string[], workers: number): Promise<void> {
  const up = new Map(servers.map((server) => [server, 0]));
  return new Promise((resolve) => {
    const listener = (event: { kind: string; detail: Record<string, unknown> }) => {
      const server = String(event.detail.server);
      if (event.kind !== 'worker-up' || !up.has(server)) return;
      up.set(server, up.get(server)! + 1);
      if ([...up.values()].every((n) => n >= workers)) {
        sg.off('event', listener);
        resolve();
      }
    };
    sg.on('event', listener);
  });
}

/** The epoch milliseconds of the first log line of a container that matches. */
async function loggedAt(container: string, pattern: RegExp): Promise<number> {
  const { stdout, stderr } = await podman!.run(['logs', container]);
  const line = `${stdout}\n${stderr}`.split('\n').find((text) => pattern.test(text));
  assert.ok(line, `${container} logged ${pattern}:\n${stderr}`);
  return (JSON.parse(line) as { time: number }).time;
}

const exitCode = async (container: string) => Number((await podman!.run(['inspect', '--format', '{{.State.ExitCode}}', container])).stdout.trim());

describe('the server image (deploy/Containerfile) built with podman', () => {
  test('it runs Node 20 as the unprivileged user node, and without keys mounted says which file it misses', async () => {
    const run = (args: string[]) => podman!.run(['run', '--rm', '--network', 'host', ...args], { allowFail: true });
    const id = await run(['--entrypoint', 'id', image]);
    assert.equal(id.stdout.trim(), `uid=${NODE_UID}(node) gid=${NODE_UID}(node) groups=${NODE_UID}(node)`);
    const version = await run(['--entrypoint', 'node', image, '--version']);
    assert.ok(Number(/^v(\d+)\./.exec(version.stdout)?.[1]) >= 20, version.stdout);
    // The default command listens on 5555 with the keys at /keys.
    const bare = await run([image]);
    assert.equal(bare.code, 2, bare.stderr);
    assert.match(bare.stderr, /cannot read key file \/keys\/server\.key/);
  });

  test('two containers dial in with keys; one stopped mid-run drains (running jobs finish there, queued ones run on the other): every job once, with its value', { timeout: 180_000 }, async (t) => {
    const sg = await spawnScatterGather([], {
      embedded: false,
      listen: 'tcp://127.0.0.1:0',
      keyFile: join(keys, 'controller.key'),
      authorizedKeys: join(keys, 'server.pub'),
      echo: false,
      progress: false,
      logLevel: 'error',
    });
    const [a, b] = [`${tag}-a`, `${tag}-b`];
    try {
      const up = workersUp(sg, ['box-a', 'box-b'], 2);
      await startContainer(a, 'a', sg.listenAddress!);
      await startContainer(b, 'b', sg.listenAddress!);
      await up;

      await sg.define('job', async (i: number) => {
        console.log(`started ${i}`);
        await new Promise((resolve) => setTimeout(resolve, 60));
        return `value ${i}`;
      });
      const started = new Map<number, string[]>();
      sg.on('output', (output: JobOutput) => {
        if (output.job !== null && output.text.startsWith('started')) started.set(output.job, [...(started.get(output.job) ?? []), output.server]);
      });
      // Jobs keep coming until box-a has gone, so that it is busy whenever its SIGTERM lands.
      const ids: number[] = [];
      const add = (n: number) =>
        ids.push(
          ...sg.addJob(
            'job',
            Array.from({ length: n }, (_, k) => [[ids.length + k]] as [unknown[]]),
          ),
        );
      const results: JobResult[] = [];
      /** Waits for results (at most `ms`) and keeps them; says how many came. */
      const collect = async (ms: number) => {
        const arrived = await sg.waitForResult({ timeout: ms });
        results.push(...arrived);
        return arrived.length;
      };
      const untilAll = async (n: number) => {
        while (results.length < n) assert.ok((await collect(60_000)) > 0, `no result for a minute (${results.length} of ${n})`);
      };
      const aDown = nextEvent(sg, 'server-down', (d) => d.server === 'box-a');
      let aGone = false;
      void aDown.then(() => (aGone = true));
      add(120);
      await untilAll(60);
      assert.ok(
        results.some((r) => r.worker.server === 'box-a'),
        'box-a ran jobs before it was stopped',
      );
      let stopReturned = false;
      const stopped = podman!.run(['stop', '--time', '30', a]).finally(() => (stopReturned = true));
      while (!aGone && !stopReturned) {
        if (ids.length - results.length < 80) add(40);
        await collect(1000);
      }
      await stopped;
      await aDown;
      add(40);
      await untilAll(ids.length);

      assert.equal(await exitCode(a), 0, 'box-a drained and exited by itself, not killed at the stop timeout');
      const sigterm = await loggedAt(a, /"why":"SIGTERM","msg":"stopping"/);
      await loggedAt(a, /"msg":"draining"/);

      // Every job reported once, with its own value, on its first attempt, having started once.
      assert.deepEqual(
        results.map((r) => r.id).sort((x, y) => x - y),
        ids,
      );
      for (const r of results) {
        assert.ok(r.ok, `job ${r.id} failed: ${r.error?.message}`);
        assert.equal(r.value, `value ${ids.indexOf(r.id)}`);
        assert.equal(r.attempts, 1, `job ${r.id} was charged an attempt`);
        assert.deepEqual(started.get(r.id), [r.worker.server], `job ${r.id} started once, where it finished`);
      }
      const drainedThere = results.filter((r) => r.worker.server === 'box-a' && r.timings.startedAt <= sigterm && r.timings.finishedAt >= sigterm);
      assert.ok(drainedThere.length > 0, 'a job running on box-a at the SIGTERM finished there');
      t.diagnostic(`${ids.length} jobs, ${results.filter((r) => r.worker.server === 'box-a').length} on box-a, ${drainedThere.length} of them running at its SIGTERM`);
      assert.ok(
        results.some((r) => r.worker.server === 'box-b' && r.timings.startedAt > sigterm),
        'box-b ran the rest',
      );
      const status = await sg.status();
      assert.deepEqual(
        status.servers.filter((s) => s.connected).map((s) => s.id),
        ['box-b'],
      );
    } finally {
      await sg.close();
    }
    // Its controller gone, box-b leaves by itself (--idle-exit), as cleanly.
    const waited = await podman!.run(['wait', b]);
    assert.equal(Number(waited.stdout.trim()), 0);
    await loggedAt(b, /"why":"no controller for 2 s \(--idle-exit\)","msg":"stopping"/);
  });
});
