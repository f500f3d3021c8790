/**
 * Named sessions across processes: a caller starts a session, queues jobs and goes (detaching,
 * killed outright, or exiting with jobs it had not handed over); another attaches by name and
 * collects every result exactly once. A detached session ends when idle, and nothing is left
 * running. Each caller is a process of its own; the session's controller is nobody's child here.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAlive } from '../kernel/process-tree.js';
import { readSessionState } from '../protocol/session-dir.js';
import { allGone, endSessionsIn, gatedDone, GATED, openGate, sessionProcesses, startScript, useSessionsDir } from './session-helpers.js';
import { waitUntil } from './helpers.js';

let dir: string;
before(() => (dir = useSessionsDir()));
after(() => endSessionsIn(dir));

const SMALL = 'workers: 2, spareWorkers: 0';

/** The controller's pid from the session's state file. */
function controllerOf(name: string): number {
  const state = readSessionState(join(dir, name));
  assert.ok(state && !state.starting, `session '${name}' has a state file`);
  return state.pid;
}

/** A caller that attaches to `name`, says what it was owed, collects every result, checks a definition is still there, and closes the session. */
function collector(name: string): ReturnType<typeof startScript> {
  return startScript(`
    const sg = await m.spawnScatterGather({ session: ${JSON.stringify(name)}, attachOnly: true });
    console.log('ATTACHED ' + JSON.stringify({ owed: sg.session.owed, held: sg.session.held, attached: sg.session.attached }));
    const results = await sg.waitForResult({ all: true });
    console.log('RESULTS ' + JSON.stringify(results.map((r) => [r.id, r.value, r.fn])));
    console.log('AGAIN ' + JSON.stringify(await sg.submit('gated', ['/', 21])));
    await sg.close();
  `);
}

describe('a session outlives its caller', { timeout: 120_000 }, () => {
  test('detached and exited: a second script collects what finished meanwhile and what was still running, exactly once', async () => {
    const g1 = join(dir, 'g1');
    const g2 = join(dir, 'g2');
    const first = startScript(`
      const sg = await m.spawnScatterGather({ session: 'detach', ${SMALL} });
      await sg.define('gated', ${GATED});
      sg.addJob('gated', [1, 2, 3, 4, 5, 6].map((x) => [['/', x]]));
      sg.addJob('gated', [7, 8, 9, 10, 11, 12].map((x) => [[${JSON.stringify(g1)}, x]]));
      sg.addJob('gated', [13, 14, 15, 16].map((x) => [[${JSON.stringify(g2)}, x]]));
      while (sg.progress.done < 6) await new Promise((resolve) => sg.once('progress', resolve));
      console.log('TAKEN ' + JSON.stringify(sg.poll().map((r) => r.id).sort((a, b) => a - b)));
      console.log('DETACHED ' + JSON.stringify(await sg.detach()));
    `);
    assert.deepEqual(await first.line(/TAKEN (\[.*\])/), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(await first.line(/DETACHED (\{.*\})/), { running: 10, held: 0 });
    const exited = await first.done;
    assert.equal(exited.code, 0, exited.stderr);
    const controller = controllerOf('detach');
    assert.ok(isAlive(controller), 'the session runs on after its caller exited');
    const processes = sessionProcesses(controller);
    assert.equal(processes.length, 3, 'the controller and its two workers');

    openGate(g1);
    await gatedDone(g1, [7, 8, 9, 10, 11, 12]); // finished while no caller was attached
    const second = collector('detach');
    const attached = (await second.line(/ATTACHED (\{.*\})/)) as { owed: number; held: number; attached: boolean };
    assert.equal(attached.attached, true);
    assert.equal(attached.owed, 10, 'what the first script had not taken');
    assert.ok(attached.held >= 6, `results that finished while detached are held for the next caller (held ${attached.held})`);
    openGate(g2); // these run on after the second script attached
    const results = (await second.line(/RESULTS (\[.*\])/)) as Array<[number, number, string]>;
    assert.deepEqual(
      results.map(([id]) => id).sort((a, b) => a - b),
      [7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
      'each result once, none the first script took',
    );
    for (const [id, value, fn] of results) assert.deepEqual([value, fn], [id * 2, 'gated']);
    assert.equal(await second.line(/AGAIN (\d+)/), 42, 'definitions stay with the session');
    assert.equal((await second.done).code, 0);
    await allGone(processes, 'the session controller and its workers after close()');
    assert.equal(existsSync(join(dir, 'detach')), false, 'close() removes the session directory');
  });

  test('killed outright: results it received and had not taken come again, those it took do not', async () => {
    const gate = join(dir, 'gk');
    const first = startScript(`
      const sg = await m.spawnScatterGather({ session: 'killed', ${SMALL} });
      await sg.define('gated', ${GATED});
      sg.addJob('gated', [1, 2, 3, 4].map((x) => [['/', x]]));
      while (sg.progress.done < 4) await new Promise((resolve) => sg.once('progress', resolve));
      const taken = sg.poll().map((r) => r.id);
      await sg.status(); // a round trip: the controller has read that they were taken
      sg.addJob('gated', [5, 6, 7].map((x) => [['/', x]]));
      sg.addJob('gated', [8, 9, 10, 11].map((x) => [[${JSON.stringify(gate)}, x]]));
      while (sg.progress.done < 7) await new Promise((resolve) => sg.once('progress', resolve));
      console.log('READY ' + JSON.stringify(taken.sort((a, b) => a - b)));
      setInterval(() => {}, 1000);
    `);
    assert.deepEqual(await first.line(/READY (\[.*\])/), [1, 2, 3, 4]);
    first.child.kill('SIGKILL');
    assert.equal((await first.done).signal, 'SIGKILL');
    const processes = sessionProcesses(controllerOf('killed'));

    const second = collector('killed');
    const attached = (await second.line(/ATTACHED (\{.*\})/)) as { owed: number; held: number };
    assert.equal(attached.owed, 7);
    assert.ok(attached.held >= 3, `the three the killed caller had received, not taken (held ${attached.held})`);
    openGate(gate);
    const results = (await second.line(/RESULTS (\[.*\])/)) as Array<[number, number, string]>;
    assert.deepEqual(
      results.map(([id]) => id).sort((a, b) => a - b),
      [5, 6, 7, 8, 9, 10, 11],
    );
    assert.equal((await second.done).code, 0);
    await allGone(processes, 'the session after close()');
  });

  test('a results() loop: what it came back past is taken; what it stopped short of, or was working on when killed, comes again', async () => {
    const first = startScript(`
      const sg = await m.spawnScatterGather({ session: 'loop', workers: 1, spareWorkers: 0 });
      await sg.define('gated', ${GATED});
      await sg.define('double', (x) => x * 2);
      // Quick jobs, after a warm-up: their results come many to a message, so the loops below take messages in part.
      await sg.map('double', Array.from({ length: 200 }, (_, i) => [[i]]));
      const ids = sg.addJob('double', Array.from({ length: 40 }, (_, i) => [[i]]));
      while (sg.progress.done < 240) await new Promise((resolve) => sg.once('progress', resolve));
      const seen = [];
      for await (const result of sg.results()) {
        seen.push(result.id);
        if (seen.length === 2) break; // both taken; the rest go back for poll()
      }
      for await (const result of sg.results()) {
        seen.push(result.id);
        if (seen.length === 4) {
          await sg.status(); // a round trip: the controller has read what was taken
          console.log('WORKING ' + JSON.stringify({ ids, seen }));
          await new Promise(() => {}); // killed while it works on its fourth
        }
      }
    `);
    const { ids, seen } = (await first.line(/WORKING (\{.*\})/)) as { ids: number[]; seen: number[] };
    first.child.kill('SIGKILL');
    await first.done;
    const second = collector('loop');
    assert.deepEqual(await second.line(/ATTACHED (\{.*\})/), { owed: 37, held: 37, attached: true });
    const results = (await second.line(/RESULTS (\[.*\])/)) as Array<[number, number, string]>;
    assert.deepEqual(
      results.map(([id]) => id).sort((a, b) => a - b),
      ids.filter((id) => !seen.slice(0, 3).includes(id)),
      'the first three are taken; the fourth, being worked on, comes again',
    );
    assert.equal((await second.done).code, 0);
  });

  test('exiting with jobs not yet handed over: they are lost, and the caller says how many', async () => {
    const first = startScript(`
      const sg = await m.spawnScatterGather({ session: 'unsent', ${SMALL} });
      await sg.define('gated', ${GATED});
      console.log('ONE ' + await sg.submit('gated', ['/', 1]));
      await sg.status(); // a round trip: the controller has read that its result was taken
      sg.addJob('gated', [2, 3, 4, 5, 6].map((x) => [['/', x]]));
      process.exit(0); // before the next turn of the event loop, which would hand them over
    `);
    const exited = await first.done;
    assert.equal(exited.code, 0, exited.stderr);
    assert.match(exited.stderr, /session 'unsent': 5 job\(s\) added in this process had not been handed to the session and are lost/);
    const second = collector('unsent');
    assert.deepEqual(await second.line(/ATTACHED (\{.*\})/), { owed: 0, held: 0, attached: true });
    assert.deepEqual(await second.line(/RESULTS (\[.*\])/), []);
    assert.equal((await second.done).code, 0);
  });

  test('a detached session ends when idle, with its workers, but not while a job runs', async () => {
    const gate = join(dir, 'gi');
    const first = startScript(`
      const sg = await m.spawnScatterGather({ session: 'idle', workers: 1, spareWorkers: 0, sessionIdleMs: 500 });
      await sg.define('gated', ${GATED});
      sg.addJob('gated', [[[${JSON.stringify(gate)}, 1]]]);
      await sg.detach();
    `);
    assert.equal((await first.done).code, 0);
    const controller = controllerOf('idle');
    const processes = sessionProcesses(controller);
    assert.equal(processes.length, 2, 'the controller and its worker');
    // Past its idle time, with its job still running: it stays.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.ok(processes.every(isAlive), 'a session with a job running does not end');
    openGate(gate);
    await allGone(processes, 'the idle session and its worker');
    await waitUntil(() => !existsSync(join(dir, 'idle')), 5000, 'the idle session to remove its directory');
  });

  test('results held past sessionHoldMb pause dispatch until a caller attaches', async () => {
    const first = startScript(`
      const sg = await m.spawnScatterGather({ session: 'bounded', workers: 1, spareWorkers: 0, sessionHoldMb: 1 });
      // 20 ms a job, so that a worker is given two at a time: the pause is not outrun by jobs given out before it.
      await sg.define('big', (x) => { const end = Date.now() + 20; while (Date.now() < end); return String(x).repeat(300000); });
      sg.addJob('big', Array.from({ length: 12 }, (_, i) => [[i % 10]]));
      await sg.detach();
    `);
    assert.equal((await first.done).code, 0);
    const log = join(dir, 'bounded', 'controller.log');
    await waitUntil(() => existsSync(log) && readFileSync(log, 'utf8').includes('reached sessionHoldMb'), 20_000, 'the session to say it holds as much as it may');
    const second = startScript(`
      const sg = await m.spawnScatterGather({ session: 'bounded', attachOnly: true });
      console.log('ATTACHED ' + JSON.stringify({ owed: sg.session.owed, held: sg.session.held }));
      const results = await sg.waitForResult({ all: true });
      console.log('RESULTS ' + JSON.stringify(results.map((r) => [r.id, r.value.length])));
      await sg.close();
    `);
    const attached = (await second.line(/ATTACHED (\{.*\})/)) as { owed: number; held: number };
    assert.equal(attached.owed, 12);
    assert.ok(attached.held >= 4 && attached.held < 12, `held results stop at about 1 MB (held ${attached.held} of 300 KB each)`);
    const results = (await second.line(/RESULTS (\[.*\])/)) as Array<[number, number]>;
    assert.deepEqual(
      results.map(([id]) => id).sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    assert.ok(results.every(([, length]) => length === 300000));
    assert.equal((await second.done).code, 0);
  });
});
