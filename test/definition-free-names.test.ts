/**
 * The free names define() finds in a function's source (caller/definition-free-names.ts): what it
 * declares in any of its scopes is not free, wherever it is declared; what it only names as a
 * property, a label or a key is not a name at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freeNames } from '../caller/definition-free-names.js';
import { parseDefinition } from '../caller/definition-syntax.js';

async function free(source: string): Promise<string[]> {
  return freeNames((await parseDefinition('test', source)).root).map((f) => f.name);
}

test('parameters, destructuring, defaults and rest are declared; what defaults read is free', async () => {
  assert.deepEqual(await free('({ a, b: [c, ...d] }, e = fallback, ...rest) => a + c + d.length + e + rest.length'), ['fallback']);
});

test('var and function declarations are hoisted to the function; let and const belong to their block', async () => {
  assert.deepEqual(await free('function f() { g(); if (x) { var v = 1; } function g() { return v; } return w; }'), ['x', 'w']);
  assert.deepEqual(await free('() => { { const inner = 1; } return inner; }'), ['inner']);
  assert.deepEqual(await free('() => { for (let i = 0; i < n; i++) {} for (const k of keys) use(k); return i; }'), ['n', 'keys', 'use', 'i']);
});

test('property names, keys, labels and methods are not names; shorthand and computed keys are', async () => {
  assert.deepEqual(await free('(o) => { out: for (;;) { break out; } return { a: o.b, [key]: 1, short, m() { return this.q; } }; }'), ['key', 'short']);
});

test('classes, catch parameters, named function expressions and arguments', async () => {
  assert.deepEqual(await free('() => { class A extends Base { static s = A; m() { return new A(); } } try { risky(); } catch ({ message }) { return message; } }'), ['Base', 'risky']);
  assert.deepEqual(await free('function fact(n) { return n <= 1 ? 1 : n * fact(n - 1) + arguments.length; }'), ['arguments']);
});

test('assignment targets are uses; typeof marks a name as guarded', async () => {
  const names = freeNames((await parseDefinition('test', '() => { total = 1; [a, b] = pair; return typeof window === "undefined" ? 0 : window.x; }')).root);
  assert.deepEqual(
    names.map((n) => [n.name, n.guarded]),
    [
      ['total', false],
      ['a', false],
      ['b', false],
      ['pair', false],
      ['window', true],
    ],
  );
});

test('method shorthand parses as a definition too', async () => {
  const parsed = await parseDefinition('test', 'scale(x) { return x * FACTOR; }');
  assert.equal(parsed.method, true);
  assert.deepEqual(
    freeNames(parsed.root).map((f) => f.name),
    ['FACTOR'],
  );
});
