/**
 * `tsgather cluster up|status|down --slurm` against the real Slurm of test/slurm.test.ts: servers
 * submitted from the command line dial a controller that listens with keys; status shows them;
 * down drains them; and with the controller gone they exit by themselves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { spawnScatterGather, type ScatterGather } from '../caller/index.js';
import { runCli } from './cli-helpers.js';
import { cli, waitUntil } from './helpers.js';
import type { TestSlurm } from './slurm.js';
import { assertExactlyOnce, assertNothingLeft, defineSpin, jobState } from './slurm-helpers.js';

export function slurmCliTests(slurm: () => TestSlurm, dir: () => string): void {
  /** A controller listening on the bridge with its own key, admitting the servers' key; and the flags `cluster up` needs to reach it. */
  async function controllerAndFlags(d: string): Promise<{ sg: ScatterGather; flags: string[] }> {
    const keys = join(d, 'keys');
    for (const name of ['notebook', 'servers']) execFileSync(process.execPath, [cli, 'keys', 'generate', '--out', keys, '--name', name], { stdio: 'ignore' });
    const sg = await spawnScatterGather([], {
      embedded: false,
      listen: `tcp://${slurm().hostAddress}:*`,
      keyFile: join(keys, 'notebook.key'),
      authorizedKeys: join(keys, 'servers.pub'),
      echo: false,
      progress: false,
    });
    const flags = [
      '--slurm',
      '--connect',
      sg.listenAddress!,
      '--controller-key',
      join(keys, 'notebook.pub'),
      '--key-file',
      join(keys, 'servers.key'),
      '--state-dir',
      d,
      '--name',
      'cli',
      '--time',
      '10:00',
      '--idle-exit',
      '2',
      '--drain-seconds',
      '5',
      '--spare-workers',
      '0',
    ];
    return { sg, flags };
  }

  const env = () => slurm().env;

  /** Resolves once `n` servers of the cluster have come up (their server-up events). */
  function serversUp(sg: ScatterGather, n: number): Promise<void> {
    return new Promise((resolve) => {
      let up = 0;
      const listener = ({ kind, detail }: { kind: string; detail: Record<string, unknown> }) => {
        if (kind !== 'server-up' || !String(detail.server).startsWith('cli-') || ++up < n) return;
        sg.off('event', listener);
        resolve();
      };
      sg.on('event', listener);
    });
  }

  test('cluster up --slurm --print-script shows the batch script, holding no secret, and submits nothing', async () => {
    const d = dir();
    const { sg, flags } = await controllerAndFlags(d);
    try {
      const printed = await runCli(
        ['cluster', 'up', ...flags, '--jobs', '3', '--cores', '2', '--memory', '1G', '--partition', 'main', '--sbatch=--exclusive', '--prologue', 'export TSG_SITE=lab', '--print-script'],
        {
          env: env(),
        },
      );
      assert.equal(printed.code, 0, printed.stderr);
      const script = printed.stdout;
      for (const line of [
        '#SBATCH --job-name=cli',
        '#SBATCH --cpus-per-task=2',
        '#SBATCH --mem=1024M',
        '#SBATCH --time=00:10:00',
        '#SBATCH --partition=main',
        '#SBATCH --signal=B:USR1@120',
        '#SBATCH --exclusive',
        'export TSG_SITE=lab',
      ]) {
        assert.ok(script.split('\n').includes(line), `the script has '${line}':\n${script}`);
      }
      assert.match(script, /^exec .* server --connect tcp:\/\/\S+ --controller-key [0-9a-f]{64} --key-file \S+servers\.key --name 'cli-\$SLURM_JOB_ID' --workers 2 --idle-exit 2 --drain-seconds 5/m);
      assert.doesNotMatch(script, /secret/);
      assert.deepEqual(slurm().liveJobs(), [], 'nothing submitted');
    } finally {
      await sg.close();
    }
  });

  test('cluster up --slurm: servers dial the controller; status shows them; down drains them, nothing lost, nothing left', async () => {
    const d = dir();
    const { sg, flags } = await controllerAndFlags(d);
    try {
      const bothUp = serversUp(sg, 2);
      const up = await runCli(['cluster', 'up', ...flags, '--jobs', '2'], { env: env() });
      assert.equal(up.code, 0, up.stderr);
      const ids = up.stdout.trim().split('\n');
      assert.equal(ids.length, 2);
      assert.match(up.stderr, /submitted Slurm job\(s\) \d+, \d+ of cluster cli/);
      await bothUp;
      await defineSpin(sg);
      const jobs = sg.addJob(
        'spin',
        Array.from({ length: 300 }, (_, i) => [[2, i]]),
      );
      const results = await sg.waitForResult({ all: true });
      assertExactlyOnce(jobs, results);
      const status = await runCli(['cluster', 'status', '--slurm', '--name', 'cli', '--state-dir', d], { env: env() });
      assert.equal(status.code, 0, status.stderr);
      for (const id of ids) assert.match(status.stdout, new RegExp(`job ${id}: RUNNING on n\\d; server: in session with its controller`));
      // Jobs still coming while it goes down: the drained servers give back what they had queued.
      const late = sg.addJob(
        'spin',
        Array.from({ length: 200 }, (_, i) => [[20, i]]),
      );
      const down = await runCli(['cluster', 'down', '--slurm', '--name', 'cli', '--state-dir', d], { env: env() });
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stderr, /0 pending job\(s\) cancelled, 2 server\(s\) drained and stopped/);
      for (const id of ids) assert.equal(jobState(slurm(), id), 'COMPLETED', 'drained, not cancelled');
      await assertNothingLeft(slurm(), d);
      // No server is left: a new one finishes what was given back.
      const again = await runCli(['cluster', 'up', ...flags, '--jobs', '1'], { env: env() });
      assert.equal(again.code, 0, again.stderr);
      const rest = await sg.waitForResult({ all: true });
      assertExactlyOnce(late, rest);
      assert.equal((await runCli(['cluster', 'down', '--slurm', '--name', 'cli', '--state-dir', d], { env: env() })).code, 0);
    } finally {
      await sg.close();
    }
    await assertNothingLeft(slurm(), d);
  });

  test('the controller going away: Slurm-started servers exit by themselves (--idle-exit), their jobs complete', async () => {
    const d = dir();
    const { sg, flags } = await controllerAndFlags(d);
    const bothUp = serversUp(sg, 2);
    const up = await runCli(['cluster', 'up', ...flags, '--jobs', '2'], { env: env() });
    assert.equal(up.code, 0, up.stderr);
    const ids = up.stdout.trim().split('\n');
    try {
      await bothUp;
    } finally {
      await sg.close();
    }
    await waitUntil(() => ids.every((id) => jobState(slurm(), id) === 'COMPLETED'), 30_000, 'the servers to exit by themselves');
    const status = await runCli(['cluster', 'status', '--slurm', '--name', 'cli', '--state-dir', d], { env: env() });
    assert.equal(status.code, 3, 'no job live');
    assert.match(status.stdout, /0 job\(s\) live/);
    for (const id of ids) assert.match(status.stdout, new RegExp(`job ${id}: COMPLETED`));
    await assertNothingLeft(slurm(), d);
  });

  test('cluster up --slurm: bad input exits 2 (or 1 when Slurm says no) with a clear message, submitting nothing', async () => {
    const d = dir();
    const base = ['cluster', 'up', '--slurm', '--state-dir', d, '--connect', 'tcp://10.0.0.1:5556', '--controller-key', '0'.repeat(64)];
    const cases: Array<[string[], number, RegExp, NodeJS.ProcessEnv?]> = [
      [['cluster', 'up', '--slurm', '--state-dir', d], 2, /--slurm needs --connect/],
      [['cluster', 'up', '--slurm', '--connect', 'tcp://10.0.0.1:5556'], 2, /--slurm needs --controller-key/],
      [[...base, 'host1'], 2, /--slurm submits jobs to Slurm: give no hosts/],
      [[...base, '--insecure', '--bind', 'tcp://0.0.0.0:5555'], 2, /--bind, --insecure are not for --slurm/],
      [[...base, '--time', 'soon'], 2, /'soon' is not a Slurm time/],
      [[...base, '--partition', 'gpu'], 1, /partition 'gpu' does not exist/],
      [[...base, '--key-file', '/nonexistent/servers.key'], 2, /nonexistent\/servers\.key/],
      [base, 1, /no `sbatch` on the PATH/, { ...slurm().env, PATH: '/nonexistent' }],
    ];
    for (const [args, code, message, environment] of cases) {
      const outcome = await runCli(args, { env: environment ?? env() });
      assert.equal(outcome.code, code, `${args.join(' ')}: ${outcome.stderr}`);
      assert.match(outcome.stderr, message);
    }
    assert.deepEqual(slurm().liveJobs(), [], 'nothing submitted');
    const none = await runCli(['cluster', 'status', '--slurm', '--name', 'nothing', '--state-dir', d], { env: env() });
    assert.equal(none.code, 3);
    assert.match(none.stderr, /no Slurm cluster named nothing/);
  });
}
