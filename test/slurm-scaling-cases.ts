/**
 * sg.scale() and sg.adapt() against the real Slurm of test/slurm.test.ts: up from no job to three
 * nodes while 2,000 jobs run, no job released between two bursts, down to none once idle; scaling
 * down drains busy servers (their running jobs finish there) rather than cancelling them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnScatterGather, slurm, type SlurmLauncher } from '../caller/index.js';
import { planScaling, type JobView } from '../launch/scaling.js';
import { waitUntil } from './helpers.js';
import type { TestSlurm } from './slurm.js';
import { assertExactlyOnce, assertNothingLeft, defineSpin, eventually, jobState, testOptions } from './slurm-helpers.js';

export function slurmScalingTests(slurm_: () => TestSlurm, dir: () => string): void {
  test('adapt: from no job to three nodes while 2,000 jobs run, none released between bursts, drained to none when idle', async () => {
    const cluster = slurm_();
    const d = dir();
    // --exclusive: one job per node, so three jobs are three nodes (n3 has a single CPU, n1 and n2 two).
    const launcher = slurm(testOptions(cluster, d, { jobs: 0, extraDirectives: ['--exclusive'], maxPending: 3, scaleDownDelayMs: 3000 })) as SlurmLauncher;
    const sg = await spawnScatterGather([], { cluster: launcher, echo: false, progress: false });
    try {
      assert.deepEqual(cluster.liveJobs(), [], 'no job before there is work');
      await defineSpin(sg);
      sg.adapt({ min: 0, max: 3 });
      const ids = sg.addJob(
        'spin',
        Array.from({ length: 2000 }, (_, i) => [[5, i]]),
      );
      const results = await sg.waitForResult({ all: true });
      assertExactlyOnce(ids, results);
      const first = (await launcher.status()).jobs;
      assert.equal(first.length, 3, 'three jobs, no more');
      assert.deepEqual(new Set(first.map((job) => job.node)), new Set(['n1', 'n2', 'n3']), 'on the three nodes');
      assert.deepEqual(new Set(results.map((r) => r.worker.server)), new Set(first.map((job) => job.server)), 'all three served');
      // A second burst at once: the same jobs take it, none was released in between.
      const again = sg.addJob(
        'spin',
        Array.from({ length: 300 }, (_, i) => [[5, i]]),
      );
      assertExactlyOnce(again, await sg.waitForResult({ all: true }));
      assert.deepEqual(
        (await launcher.status()).jobs.map((job) => [job.id, job.phase]),
        first.map((job) => [job.id, 'serving']),
      );
      // Idle: after scaleDownDelayMs the servers are drained, and their jobs end on their own.
      await waitUntil(() => cluster.liveJobs().length === 0, 30_000, 'adapt to release the idle jobs');
      for (const job of first) assert.equal(jobState(cluster, job.id), 'COMPLETED', `job ${job.id} was drained, not cancelled`);
    } finally {
      await sg.close();
    }
    await assertNothingLeft(cluster, d);
  });

  test('scale: up to three jobs, then down to one: busy servers are drained, their running jobs finish there', async () => {
    const cluster = slurm_();
    const d = dir();
    const launcher = slurm(testOptions(cluster, d, { jobs: 1, wait: 1 })) as SlurmLauncher;
    const sg = await spawnScatterGather([], { cluster: launcher, echo: false, progress: false });
    try {
      await sg.scale({ workers: 3 });
      await launcher.waitForServers(3, 30_000);
      await eventually(async () => (await sg.status()).servers.filter((s) => s.id?.startsWith(launcher.name) && (s.workers?.length ?? 0) > 0).length === 3, 10_000, 'a worker up on each server');
      await defineSpin(sg);
      const long = sg.addJob(
        'spin',
        Array.from({ length: 12 }, (_, i) => [[300, i]]),
      );
      await eventually(async () => (await launcher.status()).jobs.every((job) => (job.inflight ?? 0) > 0), 10_000, 'every server to have jobs');
      await sg.scale(1);
      const drained = (await launcher.status()).jobs.filter((job) => job.phase === 'draining');
      assert.equal(drained.length, 2);
      const results = await sg.waitForResult({ all: true });
      assertExactlyOnce(long, results);
      assert.deepEqual(
        results.filter((r) => r.attempts !== 1).map((r) => r.id),
        [],
        'no job was cut short and rerun',
      );
      for (const job of drained)
        assert.ok(
          results.some((r) => r.worker.server === job.server),
          `drained ${job.server} finished jobs it was running`,
        );
      await waitUntil(() => drained.every((job) => jobState(cluster, job.id) === 'COMPLETED'), 30_000, 'the drained servers to end');
      assert.deepEqual(cluster.liveJobs().length, 1, 'one job left');
    } finally {
      await sg.close();
    }
    await assertNothingLeft(cluster, d);
  });

  test('the scaling plan: at most maxPending waiting, pending jobs cancelled before servers, the least busy drained first', () => {
    const job = (id: string, phase: JobView['phase'], inflight = 0, submittedAt = Number(id)): JobView => ({ id, phase, inflight, submittedAt });
    const base = { cores: 2, maxPending: 2, now: 10_000, scaleDownDelayMs: 1000 };
    assert.equal(planScaling({ ...base, target: { kind: 'adapt', min: 0, max: 10 }, jobs: [], work: 1000 }).submit, 2, 'capped by maxPending');
    assert.equal(planScaling({ ...base, target: { kind: 'adapt', min: 0, max: 10 }, jobs: [job('1', 'pending')], work: 1000 }).submit, 1);
    assert.equal(planScaling({ ...base, target: { kind: 'adapt', min: 0, max: 10 }, jobs: [], work: 3 }).submit, 2, 'a job per `cores` jobs of work');
    const jobs = [job('1', 'serving', 3), job('2', 'serving', 0), job('3', 'starting'), job('4', 'pending')];
    const down = planScaling({ ...base, target: { kind: 'fixed', jobs: 1 }, jobs, work: 0 });
    assert.deepEqual([down.cancel, down.drain], [['4', '3'], ['2']]);
    const soon = planScaling({ ...base, target: { kind: 'adapt', min: 0, max: 4 }, jobs, work: 0 });
    assert.deepEqual([soon.cancel, soon.drain, soon.belowSince], [[], [], base.now], 'adapt waits before going down');
    const later = planScaling({ ...base, target: { kind: 'adapt', min: 0, max: 4 }, jobs, work: 0, belowSince: base.now - 1000 });
    assert.deepEqual(
      [later.cancel, later.drain],
      [
        ['4', '3'],
        ['2', '1'],
      ],
    );
  });
}
