/**
 * Compute servers as Slurm batch jobs, against a real Slurm started once for the whole file
 * (test/slurm.ts: munged, slurmctld, and three slurmd nodes in network namespaces). Bad options
 * fail before anything is submitted; jobs run through Slurm-launched servers exactly once through
 * scancel, the wall-time, and the controller going away; nothing is left running.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnScatterGather, slurm, type SlurmLauncher } from '../caller/index.js';
import { nextEvent, waitUntil } from './helpers.js';
import { TestSlurm } from './slurm.js';
import { assertExactlyOnce, assertNothingLeft, CLUSTER, defineSpin, jobState, secretOf, stateDir, testOptions } from './slurm-helpers.js';
import { slurmCliTests } from './slurm-cli-cases.js';
import { slurmScalingTests } from './slurm-scaling-cases.js';

describe('compute servers as Slurm jobs', { timeout: 600_000 }, () => {
  let cluster: TestSlurm;
  const dirs: string[] = [];
  const dir = () => {
    const made = stateDir();
    dirs.push(made);
    return made;
  };

  before(async () => {
    cluster = await TestSlurm.start(CLUSTER);
  });

  after(async () => {
    await cluster?.stop();
    for (const made of dirs) rmSync(made, { recursive: true, force: true });
  });

  /** spawnScatterGather refuses these before submitting anything; nothing is left in Slurm's queue. */
  const refused: Array<[string, (d: string) => Parameters<typeof slurm>[0], RegExp]> = [
    ['no sbatch on the PATH', (d) => ({ ...testOptions(cluster, d), env: { ...cluster.env, PATH: '/nonexistent' } }), /no `sbatch` on the PATH/],
    ['a partition that does not exist', (d) => testOptions(cluster, d, { partition: 'gpu' }), /partition 'gpu' does not exist \(partitions: main \(default\), short\)/],
    ['a wall-time over the partition’s limit', (d) => testOptions(cluster, d, { partition: 'short', walltime: '30:00' }), /walltime 00:30:00 is over partition short's MaxTime of 00:02:00/],
    ['a wall-time Slurm cannot read', (d) => testOptions(cluster, d, { walltime: 'soon' }), /'soon' is not a Slurm time/],
    ['a wall-time shorter than the drain signal', (d) => testOptions(cluster, d, { walltime: '1', signalSeconds: 120 }), /walltime 00:01:00 is not longer than signalSeconds \(120 s\)/],
    ['more memory than any node has', (d) => testOptions(cluster, d, { memory: '64G' }), /memory 65536M is more than any node of partition main has \(at most 2000M\)/],
    ['more cores than any node has', (d) => testOptions(cluster, d, { cores: 8 }), /cores 8 is more than any node of partition main has \(at most 2 CPUs\)/],
    ['a feature no node has', (d) => testOptions(cluster, d, { constraint: 'nvme' }), /Slurm would refuse the job \(sbatch --test-only\): .*Invalid feature specification/],
    ['an #SBATCH line that would break the script', (d) => testOptions(cluster, d, { extraDirectives: ['--gres=gpu:1\nrm -rf ~'] }), /extraDirectives must be a list of strings, each one line/],
  ];
  for (const [what, options, message] of refused) {
    test(`refused before submitting: ${what}`, async () => {
      const d = dir();
      // Options that cannot be right throw in slurm() already; the others reject in spawnScatterGather.
      await assert.rejects(async () => spawnScatterGather([], { cluster: slurm(options(d)) }), message);
      assert.deepEqual(cluster.liveJobs(), [], 'nothing was submitted');
      assert.deepEqual(readdirSync(d), [], 'no folder, no key left behind');
    });
  }

  test('jobs run through Slurm-started servers exactly once; keys stay in 0600 files and off command lines; close() leaves nothing', async () => {
    const d = dir();
    const launcher = slurm(testOptions(cluster, d, { jobs: 2, constraint: 'big', wait: 2 })) as SlurmLauncher;
    const sg = await spawnScatterGather([], { cluster: launcher, echo: false, progress: false });
    try {
      const folder = join(d, launcher.name);
      assert.equal(statSync(folder).mode & 0o777, 0o700);
      assert.equal(statSync(join(folder, 'server.key')).mode & 0o777, 0o600);
      const secret = secretOf(join(folder, 'server.key'));
      const script = readFileSync(join(folder, 'server-job.sh'), 'utf8');
      assert.match(script, /^#SBATCH --signal=B:USR1@120$/m);
      assert.match(script, /^#SBATCH --constraint=big$/m);
      assert.doesNotMatch(script, new RegExp(secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      const servers = cluster.processesMentioning(folder);
      assert.ok(servers.length >= 2, `the two servers run (found ${servers.length})`);
      for (const pid of servers) assert.ok(!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(secret), 'no secret key on a command line');

      await defineSpin(sg);
      const ids = sg.addJob(
        'spin',
        Array.from({ length: 500 }, (_, i) => [[1, i]]),
      );
      const results = await sg.waitForResult({ all: true });
      assertExactlyOnce(ids, results);
      const status = await launcher.status();
      assert.deepEqual(
        status.jobs.map((job) => [job.state, job.node, job.phase]),
        [
          ['RUNNING', 'n2', 'serving'],
          ['RUNNING', 'n2', 'serving'],
        ],
        'both jobs on n2, the node with the feature',
      );
      assert.deepEqual(new Set(results.map((r) => r.worker.server)), new Set(status.jobs.map((job) => job.server)));
    } finally {
      await sg.close();
    }
    await waitUntil(() => cluster.liveJobs().length === 0, 30_000, 'the jobs to end');
    assert.ok(!existsSync(join(d, launcher.name, 'server.key')), 'the servers’ secret key is deleted with the pool');
    await assertNothingLeft(cluster, d);
  });

  test('a job cancelled with scancel mid-run: its jobs are rerun on the other server, nothing lost', async () => {
    const d = dir();
    // A drain time longer than Slurm's KillWait (5 s here): the server must not sit it out once its workers are dead.
    const launcher = slurm(testOptions(cluster, d, { jobs: 2, wait: 2, drainSeconds: 30 })) as SlurmLauncher;
    const sg = await spawnScatterGather([], { cluster: launcher, echo: false, progress: false, retries: 2 });
    try {
      await defineSpin(sg);
      const [victim] = (await launcher.status()).jobs;
      const victimDown = nextEvent(sg, 'server-down', (detail) => detail.server === victim!.server);
      let cancelled = false;
      const ids = sg.addJob(
        'spin',
        Array.from({ length: 400 }, (_, i) => [[10, i]]),
      );
      const results = [];
      for await (const result of sg.results()) {
        results.push(result);
        if (!cancelled && results.filter((r) => r.worker.server === victim!.server).length >= 20) {
          cluster.command('scancel', victim!.id);
          cancelled = true;
        }
      }
      assert.ok(cancelled, 'the victim ran jobs before it was cancelled');
      assertExactlyOnce(ids, results);
      assert.equal(jobState(cluster, victim!.id), 'CANCELLED');
      // scancel's SIGTERM reached the workers too; with nothing left to finish, the server said goodbye at once.
      assert.equal((await victimDown).reason, 'server shutting down', 'the server left with a goodbye, not by going silent');
      assert.ok(
        results.some((r) => r.worker.server !== victim!.server),
        'the other server ran the rest',
      );
    } finally {
      await sg.close();
    }
    await assertNothingLeft(cluster, d);
  });

  test('the wall-time reached mid-run: Slurm signals the server, it drains, a new job takes over, nothing lost', async () => {
    const d = dir();
    // One minute, signalled 58 s before: Slurm checks time limits every 30 s, so the signal comes within about 30 s.
    const launcher = slurm(testOptions(cluster, d, { jobs: 1, wait: 1, walltime: '1', signalSeconds: 58, drainSeconds: 5 })) as SlurmLauncher;
    const sg = await spawnScatterGather([], { cluster: launcher, echo: false, progress: false });
    try {
      await defineSpin(sg);
      const [first] = (await launcher.status()).jobs;
      const results = [];
      const ids: number[] = [];
      // Jobs keep coming until the first server's job has ended: drained by the server itself, not killed at the limit.
      while (!['COMPLETED', 'TIMEOUT', 'CANCELLED', 'FAILED'].includes(jobState(cluster, first!.id))) {
        ids.push(
          ...sg.addJob(
            'spin',
            Array.from({ length: 20 }, (_, i) => [[5, ids.length + i]]),
          ),
        );
        results.push(...(await sg.waitForResult({ all: true, timeout: 2000 })));
        assert.ok(ids.length < 100_000, 'the first job ends before long');
      }
      results.push(...(await sg.waitForResult({ all: true })));
      assertExactlyOnce(ids, results);
      assert.equal(jobState(cluster, first!.id), 'COMPLETED', 'the server ended its job before the wall-time');
      const log = readFileSync(join(d, launcher.name, 'logs', `${launcher.name}-${first!.id}.log`), 'utf8');
      assert.match(log, /"why":"SIGUSR1"/, 'the server stopped on Slurm’s signal');
      assert.match(log, /"msg":"draining"/);
      const second = (await launcher.status()).jobs.find((job) => job.id !== first!.id);
      assert.ok(second, 'the launcher submitted a job in its place');
      assert.ok(
        results.some((r) => r.worker.server === second!.server),
        'the new server ran the rest',
      );
    } finally {
      await sg.close();
    }
    await assertNothingLeft(cluster, d);
  });

  test('two launchers for two kinds of node: each one’s servers run where it asks, scales by itself, and carries its labels', async () => {
    const d = dir();
    const small = slurm(testOptions(cluster, d, { jobs: 1, wait: 1, partition: 'short', walltime: '2:00', signalSeconds: 60 })) as SlurmLauncher;
    const big = slurm(testOptions(cluster, d, { jobs: 1, wait: 1, constraint: 'big', labels: ['big'] })) as SlurmLauncher;
    const sg = await spawnScatterGather([], { cluster: [small, big], echo: false, progress: false });
    try {
      await big.scale(2);
      await big.waitForServers(2, 30_000);
      assert.deepEqual(
        (await small.status()).jobs.map((job) => job.node),
        ['n3'],
        'the short partition is n3',
      );
      assert.deepEqual(
        (await big.status()).jobs.map((job) => job.node),
        ['n2', 'n2'],
        'the feature big is on n2',
      );
      assert.throws(() => sg.adapt({ max: 4 }), /several cluster launchers: call scale\(\) or adapt\(\) on each of them/);
      await defineSpin(sg);
      const ids = sg.addJob(
        'spin',
        Array.from({ length: 300 }, (_, i) => [[2, i]]),
      );
      const results = await sg.waitForResult({ all: true });
      assertExactlyOnce(ids, results);
      const servers = new Set(results.map((r) => r.worker.server));
      for (const job of [...(await small.status()).jobs, ...(await big.status()).jobs]) assert.ok(servers.has(job.server!), `${job.server} ran jobs`);
      // Jobs asking for the label the big launcher's servers carry run only there.
      const bigServers = new Set((await big.status()).jobs.map((job) => job.server));
      const labelled = await sg.mapResults(
        'spin',
        Array.from({ length: 60 }, (_, i) => [[2, i]]),
        { labels: ['big'] },
      );
      assert.ok(
        labelled.every((r) => r.ok && bigServers.has(r.worker.server)),
        `jobs asking for 'big' ran only on ${[...bigServers].join(', ')}`,
      );
    } finally {
      await sg.close();
    }
    await assertNothingLeft(cluster, d);
  });

  test('a job that stays pending is reported with its job id and squeue’s reason, and cancelled', async () => {
    const d = dir();
    const options = testOptions(cluster, d, { jobs: 1, wait: 1, extraDirectives: ['--hold'], pendingTimeoutMs: 500 });
    await assert.rejects(spawnScatterGather([], { cluster: slurm(options) }), /Slurm job \d+ has been pending for \d+ s \(JobHeldUser: it is held/);
    await waitUntil(() => cluster.liveJobs().length === 0, 30_000, 'the held job to be cancelled');
  });

  test('a server that cannot reach the controller: the error names the job, its node, and the log that says where it tried', async () => {
    const d = dir();
    // The controller listens on this machine's loopback address, which in a node's namespace is the node's own.
    const options = testOptions(cluster, d, { jobs: 1, wait: 1, interface: undefined, address: '127.0.0.1', startTimeoutMs: 3000 });
    await assert.rejects(
      spawnScatterGather([], { cluster: slurm(options) }),
      /Slurm job \d+ has run on n\d for \d+ s, but its server has not reached the controller at tcp:\/\/127\.0\.0\.1:\d+; its log .*\.log:\n[\s\S]*info: dialling controller url=tcp:\/\/127\.0\.0\.1:\d+/,
    );
    await waitUntil(() => cluster.liveJobs().length === 0, 30_000, 'the job to be cancelled');
    await assertNothingLeft(cluster, d);
  });

  test('servers that fail at once: after three in a row it stops submitting and says why, with the log', async () => {
    const d = dir();
    const options = testOptions(cluster, d, { jobs: 1, wait: 1, command: '/nonexistent/tsgather' });
    await assert.rejects(
      spawnScatterGather([], { cluster: slurm(options) }),
      /3 Slurm jobs in a row ended before their server reached the controller[\s\S]*Slurm job \d+ ended \(FAILED\)[\s\S]*\/nonexistent\/tsgather: No such file or directory/,
    );
    await waitUntil(() => cluster.liveJobs().length === 0, 30_000, 'the jobs to end');
  });

  slurmCliTests(() => cluster, dir);
  slurmScalingTests(() => cluster, dir);
});

test('docs/slurm.md lists every slurm() option, and only those', () => {
  const source = readFileSync(new URL('../../launch/slurm-options.ts', import.meta.url), 'utf8');
  const body = source.slice(source.indexOf('export interface SlurmOptions {'), source.indexOf('\n}\n', source.indexOf('export interface SlurmOptions {')));
  const options = [...body.matchAll(/^ {2}(\w+)\?:/gm)].map((match) => match[1]!);
  assert.ok(options.includes('walltime') && options.includes('env'), 'the parser finds the options');
  const docs = readFileSync(new URL('../../docs/slurm.md', import.meta.url), 'utf8');
  const table = docs.slice(docs.indexOf('### Options (`slurm({...})`)'), docs.indexOf('## Scaling'));
  assert.deepEqual([...table.matchAll(/^\| `(\w+)` \|/gm)].map((match) => match[1]!).sort(), options.sort());
});
