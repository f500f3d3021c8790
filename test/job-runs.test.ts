import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkOffsets, encodeValue, inGroups, PACK_GROUP, packPlainValues, packValues, parseRun, ProtocolError, slicePacked, valuesOfRun } from '../protocol/index.js';
import { ChunkIndex, jobsWithinFrame, largestFrame, makeChunk, openParts, removeFromRuns, runFrames, runOf } from '../controller/job-chunks.js';

const texts = [[[1]], [['é', 'ü']], [[{ a: '∑' }], { k: 2 }], [[]]].map((item) => encodeValue(item).text);

test('any run of packed job values is one slice that parses back to exactly its jobs, multi-byte text included', () => {
  const packed = packValues(texts);
  checkOffsets(packed);
  for (let start = 0; start < texts.length; start++) {
    for (let end = start + 1; end <= texts.length; end++) {
      const trees = parseRun(valuesOfRun(packed, start, end), end - start);
      assert.deepEqual(
        trees,
        texts.slice(start, end).map((text) => JSON.parse(text)),
      );
    }
  }
});

test('plain values packed in bulk come out byte for byte as packed one by one: quotes, backslashes, brackets and commas inside strings, multi-byte text, in groups', () => {
  const tricky = ['a"b', 'c\\', '\\"', '[,]', '{,}', '"', 'é,ü', '∑"∑', '', ',,', '\\\\"x'];
  const items = Array.from({ length: 20_000 }, (_, i) => (i % 7 === 0 ? [[tricky[i % tricky.length], i], { k: [tricky[(i + 3) % tricky.length]] }] : [[i, { s: tricky[i % tricky.length] }]]));
  const bulk = inGroups(items, packPlainValues);
  const single = inGroups(
    items.map((item) => encodeValue(item).text),
    packValues,
  );
  assert.equal(bulk.length, Math.ceil(items.length / PACK_GROUP));
  bulk.forEach((group, g) => {
    assert.ok(group.values.equals(single[g]!.values), `group ${g}: the same bytes`);
    assert.deepEqual(group.offsets, single[g]!.offsets);
    checkOffsets(group);
  });
  const part = slicePacked(bulk[1]!, 10, 15);
  checkOffsets(part);
  assert.deepEqual(parseRun(valuesOfRun(part, 0, 5), 5), items.slice(PACK_GROUP + 10, PACK_GROUP + 15));
  assert.equal(packPlainValues([]).values.length, 0);
});

test('a group whose bytes pass the cap, or whose text is too long for one string, is halved until it fits; one value alone may pass the cap', () => {
  const texts = Array.from({ length: 1000 }, (_, i) => JSON.stringify([[i, 'x'.repeat(i === 500 ? 5000 : 90)]]));
  const capped = inGroups(texts, packValues, 2000);
  assert.deepEqual(Buffer.concat(capped.map((g) => g.values)), packValues(texts).values, 'every value, in order');
  for (const group of capped) assert.ok(group.values.length <= 2000 || group.offsets.length === 2, `a group of ${group.offsets.length - 1} values has ${group.values.length} bytes`);
  assert.ok(
    capped.some((group) => group.values.length > 2000),
    'the 5,000-byte value went alone',
  );
  // V8's longest string, stood in for by a packer that refuses more than 100 values.
  const refusing = (group: readonly string[]) => {
    if (group.length > 100) throw new RangeError('Invalid string length');
    return packValues(group);
  };
  const halved = inGroups(texts, refusing);
  assert.ok(halved.every((group) => group.offsets.length - 1 <= 100));
  assert.deepEqual(Buffer.concat(halved.map((g) => g.values)), packValues(texts).values);
  assert.throws(
    () =>
      inGroups(['1'], () => {
        throw new RangeError('Invalid string length');
      }),
    RangeError,
    'one value that cannot be packed throws',
  );
});

test('offsets that do not match the values frame, and a run of the wrong length, are refused with a ProtocolError', () => {
  const packed = packValues(texts);
  const shifted = { values: packed.values, offsets: packed.offsets.map((offset, i) => (i === 2 ? offset + 1 : offset)) };
  assert.throws(
    () => checkOffsets(shifted),
    (error: Error) => error instanceof ProtocolError && /job 1 does not end/.test(error.message),
  );
  const short = { values: packed.values.subarray(1), offsets: packed.offsets };
  assert.throws(() => checkOffsets(short), ProtocolError);
  assert.throws(() => parseRun(valuesOfRun(packed, 0, 2), 3), /holds 2 values, not 3/);
  assert.throws(() => parseRun(Buffer.from('1,,2'), 3), /not a list of JSON values/);
});

test("a run's frames carry its ids, its values and only its own binary frames", () => {
  const bins = [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')];
  const chunk = makeChunk(100, 'f', 0, {}, packValues(texts), Uint32Array.from([0, 2, 0, 1]), bins);
  const { meta, frames } = runFrames(runOf(chunk, 1, 3));
  assert.deepEqual(meta, [101, 2, 'f', 0, 2]);
  assert.equal(frames.length, 4);
  assert.deepEqual([...new Uint32Array(Uint8Array.from(frames[1]!).buffer)], [2, 0]);
  assert.deepEqual(
    frames.slice(2).map((frame) => Buffer.from(frame).toString()),
    ['a', 'b'],
  );
  assert.equal(runFrames(runOf(chunk, 2, 3)).frames.length, 1, 'a run without binary frames sends no count frame');
});

test('taking a job out of the middle of a run splits it; open parts skip jobs already answered', () => {
  const chunk = makeChunk(1, 'f', 0, {}, packValues(Array(10).fill('[[]]')), undefined, []);
  const runs = [runOf(chunk, 0, 10)];
  assert.ok(removeFromRuns(runs, chunk, 4));
  assert.deepEqual(
    runs.map(({ start, end }) => [start, end]),
    [
      [0, 4],
      [5, 10],
    ],
  );
  assert.ok(removeFromRuns(runs, chunk, 0));
  assert.ok(removeFromRuns(runs, chunk, 9));
  assert.equal(removeFromRuns(runs, chunk, 4), undefined, 'a job no longer held is not found');
  assert.deepEqual(
    runs.map(({ start, end }) => [start, end]),
    [
      [1, 4],
      [5, 9],
    ],
  );
  chunk.done[2] = 1;
  chunk.done[5] = 1;
  assert.deepEqual(
    [...openParts(runOf(chunk, 0, 10))].map(({ start, end }) => [start, end]),
    [
      [0, 2],
      [3, 5],
      [6, 10],
    ],
  );
});

test('chunks are found by any of their ids until their last job is answered; ids may not overlap', () => {
  const index = new ChunkIndex();
  const a = makeChunk(1, 'f', 0, {}, packValues(['[[]]', '[[]]']), undefined, []);
  const b = makeChunk(3, 'f', 0, {}, packValues(['[[]]']), undefined, []);
  index.add(a);
  index.add(b);
  assert.equal(index.find(2), a);
  assert.equal(index.find(3), b);
  assert.equal(index.find(4), undefined);
  assert.throws(() => index.add(makeChunk(2, 'f', 0, {}, packValues(['[[]]']), undefined, [])), /overlap/);
  a.open = 0;
  index.close(a);
  assert.equal(index.find(1), undefined, 'a finished chunk answers no more ids');
  assert.equal(a.values.length, 0, 'a finished chunk lets go of its values at once, not at the next sweep');
  assert.deepEqual(a.bins, [], 'and of its binary frames');
});

test('a run to a server with a frame limit stops before the job whose values or binary frame would pass it', () => {
  const texts = Array.from({ length: 10 }, () => JSON.stringify(['x'.repeat(96)])); // 100 bytes, 101 with its comma
  const plain = makeChunk(1, 'f', 0, {}, packValues(texts), undefined, []);
  assert.equal(jobsWithinFrame(plain, 0, 10, 10_000), 10);
  assert.equal(jobsWithinFrame(plain, 0, 10, 350), 3, '3 jobs make a 302-byte values frame, 4 a 403-byte one');
  assert.equal(jobsWithinFrame(plain, 5, 5, 99), 0, 'one job alone is too large');
  assert.equal(largestFrame(plain, 5), 100);
  const bins = [Buffer.alloc(10), Buffer.alloc(1000), Buffer.alloc(10)];
  const binary = makeChunk(1, 'f', 0, {}, packValues(texts), Uint32Array.from([1, 0, 1, 0, 0, 0, 0, 0, 0, 1]), bins);
  assert.equal(jobsWithinFrame(binary, 0, 10, 500), 2, 'job 2 has a 1,000-byte frame');
  assert.equal(jobsWithinFrame(binary, 2, 8, 500), 0);
  assert.equal(largestFrame(binary, 2), 1000);
  assert.equal(jobsWithinFrame(binary, 3, 7, 500), 4, 'from job 3 the values frame is what stops it');
});
