import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeValue, encodeValue, SerializationError } from '../protocol/index.js';

const roundTrip = (value: unknown) => decodeValue(encodeValue(value));

test('superjson types round-trip: Date, Map, Set, BigInt, RegExp, undefined, Error', () => {
  const value = {
    when: new Date(86_400_000),
    map: new Map<unknown, unknown>([
      ['a', 1],
      [2, new Set([3])],
    ]),
    set: new Set(['x', 'y']),
    big: 2n ** 70n,
    re: /a+b/gi,
    missing: undefined,
    nan: Number.NaN,
    error: Object.assign(new RangeError('too far'), { code: 'E_FAR' }),
  };
  const back = roundTrip(value) as typeof value;
  assert.deepEqual(back.when, value.when);
  assert.deepEqual(back.map, value.map);
  assert.deepEqual(back.set, value.set);
  assert.equal(back.big, value.big);
  assert.equal(String(back.re), String(value.re));
  assert.ok('missing' in back && back.missing === undefined);
  assert.ok(Number.isNaN(back.nan));
  assert.equal(back.error.message, 'too far');
  assert.equal(back.error.name, 'RangeError');
  assert.equal((back.error as unknown as { code: string }).code, 'E_FAR');
});

test('plain JSON travels as its own JSON text and comes back equal; anything JSON would change goes as a tree', () => {
  const value = [[1, 'two', { three: [true, null] }], { bins: 10 }];
  const encoded = encodeValue(value);
  assert.equal(encoded.text, JSON.stringify(value));
  assert.equal(encoded.plain, true);
  assert.deepEqual(roundTrip(value), value);
  assert.equal(roundTrip(undefined), undefined);
  for (const changed of [[undefined], { a: undefined }, -0, Number.NaN, new Date(0)]) {
    assert.equal(encodeValue(changed).plain, false, `${String(changed)} is not plain`);
    assert.deepEqual(roundTrip(changed), changed);
  }
});

test('typed arrays, ArrayBuffers and Buffers travel as binary frames, not inside the JSON', () => {
  const f64 = Float64Array.from({ length: 1000 }, (_, i) => i / 3);
  const value = { f64, u8: new Uint8Array([1, 2, 3]), buf: Buffer.from('héllo'), ab: new Uint16Array([7, 8]).buffer, i32: new Int32Array([-1, 5]) };
  const encoded = encodeValue(value);
  assert.equal(encoded.bins.length, 5);
  assert.ok(encoded.text.length < 400, `JSON part stays small (${encoded.text.length} chars): no base64 or number lists`);
  assert.equal(encoded.bins[0]!.buffer, f64.buffer, 'the frame is a view on the array, not a copy');
  const back = roundTrip(value) as typeof value;
  assert.ok(back.f64 instanceof Float64Array);
  assert.deepEqual([...back.f64], [...f64]);
  assert.ok(Buffer.isBuffer(back.buf));
  assert.equal(back.buf.toString(), 'héllo');
  assert.ok(back.ab instanceof ArrayBuffer);
  assert.deepEqual([...new Uint16Array(back.ab)], [7, 8]);
  assert.deepEqual([...back.i32], [-1, 5]);
});

test('a typed array on an unaligned frame is copied into an aligned one', () => {
  const encoded = encodeValue(new Float64Array([1.5, 2.5]));
  const unaligned = Buffer.alloc(17);
  unaligned.set(encoded.bins[0]!, 1);
  const back = decodeValue({ ...encoded, bins: [unaligned.subarray(1)] }) as Float64Array;
  assert.deepEqual([...back], [1.5, 2.5]);
});

test('values that cannot travel are refused with the path to the culprit', () => {
  assert.throws(
    () => encodeValue({ a: [1, { f: () => 1 }] }, 'job 0'),
    (error: Error) => error instanceof SerializationError && /job 0\.a\[1\]\.f is a function/.test(error.message),
  );
  assert.throws(() => encodeValue([Symbol('s')]), /value\[0\] is a symbol/);
  assert.throws(() => encodeValue({ p: Promise.resolve(1) }), /value\.p is a Promise/);
  assert.throws(() => encodeValue(new Map([['k', new WeakMap()]])), /WeakMap/);
});

test('shared references and cycles survive', () => {
  const shared = { n: 1 };
  const cyclic: Record<string, unknown> = { shared, again: shared };
  cyclic.self = cyclic;
  const back = roundTrip(cyclic) as Record<string, unknown>;
  assert.equal(back.self, back);
  assert.equal(back.shared, back.again);
});

test('a refusal leaves nothing behind: the next value, repeated or cyclic, encodes as usual', () => {
  const shared = [1, 2];
  assert.throws(() => encodeValue({ deep: [[shared, () => 1]] }), /value\.deep\[0\]\[1\] is a function/);
  assert.deepEqual(roundTrip({ a: shared, b: shared }), { a: [1, 2], b: [1, 2] });
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  const back = roundTrip(cyclic) as unknown[];
  assert.equal(back[0], back);
});
