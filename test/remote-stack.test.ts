/**
 * A failed job's error as the caller gets it, from a real pool: `stack` shows the user's frames,
 * named after the defined function, and none of tsgather's own; `remoteStack` keeps the worker's
 * whole stack.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RemoteError, spawnScatterGather, type ScatterGather } from '../caller/index.js';

const frames = (stack: string | undefined) => (stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));

describe('remote error stacks', { timeout: 60_000 }, () => {
  let sg: ScatterGather;
  before(async () => (sg = await spawnScatterGather([], { workers: 1, echo: false })));
  after(() => sg.close());

  test("stack keeps the defined function's frames, as define:<name>:<line>:<column>, and cuts the worker's", async () => {
    await sg.define('outer', function outer(x: number) {
      const y = x + 1;
      return helper(y);
      function helper(z: number): never {
        throw new RangeError(`bad ${z}`);
      }
    });
    const error = await sg.submit('outer', [1]).then(
      () => assert.fail('the job should fail'),
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof RemoteError);
    assert.equal(error.name, 'RangeError');
    const kept = frames(error.stack).map((line) => line.trim());
    assert.equal(kept.length, 2, kept.join('\n'));
    assert.match(kept[0]!, /^at helper \(define:outer:5:\d+\)$/);
    assert.match(kept[1]!, /^at outer \(define:outer:3:\d+\)$/);
    assert.match(error.stack!, /^RangeError: bad 2\n/);
    // the full stack stays available
    assert.ok(error.remoteStack!.includes(kept[0]!));
    assert.ok(
      frames(error.remoteStack).some((line) => /[\\/]dist[\\/]server[\\/]worker-runtime\.js/.test(line)),
      'remoteStack has the worker runtime frames',
    );
  });

  test('an arrow function is named after its definition; async frames are kept', async () => {
    await sg.define('arrow', (value: { a?: { b: number } }) => value.a!.b);
    await sg.define('later', async (n: number) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      throw new Error(`late ${n}`);
    });
    const [arrow, later] = await Promise.all([sg.mapResults('arrow', [[[{}]]]), sg.mapResults('later', [[[3]]])]);
    assert.match(frames(arrow[0]!.error!.stack).join('\n').trim(), /^at arrow \(define:arrow:1:\d+\)$/);
    assert.match(frames(later[0]!.error!.stack).join('\n').trim(), /^at later \(define:later:3:\d+\)$/);
  });

  test('an error tsgather reports itself (no user frame) has its message and no frames', async () => {
    const [result] = await sg.mapResults('notDefined', [[[1]]]);
    assert.equal(result!.error!.name, 'UnknownFunctionError');
    assert.deepEqual(frames(result!.error!.stack), []);
    assert.ok(frames((result!.error as RemoteError).remoteStack).length > 0);
  });
});
