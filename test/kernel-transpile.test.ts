/** Cell source handling that needs no kernel: type stripping, module syntax, completeness, cursor units. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codePointToUtf16, utf16ToCodePoint } from '../kernel/code-points.js';
import { isComplete } from '../kernel/is-complete.js';
import { AWAIT_GUARD, ITERATE_GUARD } from '../kernel/cell-guards.js';
import { CellSyntaxError, compileCell, IMPORT_HELPER, transpileCell } from '../kernel/transpile.js';

test('types are blanked out in place, keeping line numbers', () => {
  const js = transpileCell('const a: number = 1;\nfunction f<T>(x: T): T { return x }\nf(a)');
  assert.equal(js.split('\n').length, 3);
  assert.doesNotMatch(js, /number|<T>/);
});

test('enums and namespaces are compiled rather than stripped', () => {
  assert.match(transpileCell('enum Color { Red, Green }\nColor.Green'), /Color\[Color\["Green"\] = 1\]/);
});

test('imports become awaited calls of the cell import helper; export keywords go', () => {
  const js = transpileCell('import fs, { readFile as rf } from "node:fs";\nimport * as path from "node:path";\nexport const x = await import("y");');
  assert.equal(
    js,
    `const { "default": fs, "readFile": rf } = await ${IMPORT_HELPER}("node:fs");\nconst path = await ${IMPORT_HELPER}("node:path");\nconst x = await ${guard(AWAIT_GUARD)}${IMPORT_HELPER}("y"));`,
  );
});

const guard = (name: string) => `(globalThis.${name} ?? ((v) => v))(`;

test('every await and for await, functions included, goes through a guard that falls back to the identity', async () => {
  const { js, lexical } = compileCell('const n: number = await f(await g());\nasync function h() { for await (const r of it) await r; }');
  assert.equal(
    js,
    `const n         = await ${guard(AWAIT_GUARD)}f(await ${guard(AWAIT_GUARD)}g())));\nasync function h() { for await (const r of ${guard(ITERATE_GUARD)}it)) await ${guard(AWAIT_GUARD)}r); }`,
  );
  assert.deepEqual(lexical, { const: ['n'], let: [] });
  // shipped as source text where no guard is installed, the function still runs
  const h = new Function(`return ${js.split('\n')[1]!.replace('async function h()', 'async function h(it)')}`)() as (it: AsyncIterable<number>) => Promise<void>;
  const seen: number[] = [];
  await h(
    (async function* () {
      yield 1;
      seen.push(1);
    })(),
  );
  assert.deepEqual(seen, [1]);
});

test('the top-level names a cell declares, by kind', () => {
  const { lexical } = compileCell(
    'import fs, { a as b } from "x";\nclass K {}\nlet { p, q: [r], ...s } = o;\nconst [t = 1, ...u] = v;\nvar w = 1;\nexport const e = 1;\nfunction f() { const inner = 1; }',
  );
  assert.deepEqual(lexical, { const: ['fs', 'b', 't', 'u', 'e'], let: ['K', 'p', 'r', 's'] });
});

test('a cell that is an object literal is an expression', () => {
  assert.equal(transpileCell('{ a: 1 }'), '({ a: 1 })');
  assert.equal(transpileCell('{ let b = 2; b }'), '{ let b = 2; b }');
});

test('syntax errors say whether more input would complete them', () => {
  const atEnd = (code: string) => {
    try {
      transpileCell(code);
      return 'no error';
    } catch (error) {
      assert.ok(error instanceof CellSyntaxError);
      return error.atEnd;
    }
  };
  assert.equal(atEnd('foo(1, '), true);
  assert.equal(atEnd('x ++ y'), false);
  assert.deepEqual(isComplete('if (a) {\n  if (b) {'), { status: 'incomplete', indent: '    ' });
  assert.deepEqual(isComplete(''), { status: 'complete' });
});

test('cursor positions convert between code points and UTF-16 units', () => {
  const text = 'a😀b🍎c';
  assert.equal(codePointToUtf16(text, 3), 4);
  assert.equal(utf16ToCodePoint(text, 4), 3);
  assert.equal(codePointToUtf16(text, [...text].length), text.length);
  assert.equal(utf16ToCodePoint(text, text.length), 5);
});
