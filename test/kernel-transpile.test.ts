/** Cell source handling that needs no kernel: type stripping, module syntax, completeness, cursor units. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codePointToUtf16, utf16ToCodePoint } from '../kernel/code-points.js';
import { isComplete } from '../kernel/is-complete.js';
import { CellSyntaxError, IMPORT_HELPER, transpileCell } from '../kernel/transpile.js';

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
  assert.equal(js, `const { "default": fs, "readFile": rf } = await ${IMPORT_HELPER}("node:fs");\nconst path = await ${IMPORT_HELPER}("node:path");\nconst x = await ${IMPORT_HELPER}("y");`);
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
