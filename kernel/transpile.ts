/**
 * Turns a TypeScript cell into a script for V8's REPL mode (Runtime.evaluate with replMode, which
 * already gives top-level await, completion values and re-declarable let/const):
 *   - types are stripped by amaro (blanked out in place, so lines and columns stay put);
 *   - static `import`/`export` are not allowed in a script, so imports become
 *     `const {…} = await __tsgather_import(…)` and `export` keywords are dropped;
 *   - `import(x)` becomes `__tsgather_import(x)`: an inspector-evaluated script has no module
 *     referrer, so Node cannot resolve a dynamic import from it by itself;
 *   - a cell that is a bare object literal `{ a: 1 }` is an expression, as in Node's REPL.
 */
import * as acorn from 'acorn';
import { simple as walk } from 'acorn-walk';
import { transformSync } from 'amaro';
import { awaitGuardEdits, topLevelBindings } from './cell-guards.js';
import { DEFINITION_IMPORT } from '../protocol/definition-captures.js';

/** The same name a worker binds to its importer: a cell function's rewritten `import()` works in a definition as it is. */
export const IMPORT_HELPER = DEFINITION_IMPORT;

export class CellSyntaxError extends Error {
  override name = 'SyntaxError';

  constructor(
    message: string,
    /** The source ended before the statement did: more lines would complete it. */
    readonly atEnd: boolean,
    readonly detail: string[] = [],
    /** Where (line from 1, column from 1), when the parser says. */
    readonly loc?: { line: number; column: number },
  ) {
    super(message);
  }
}

const PARSE_OPTIONS: acorn.Options = {
  ecmaVersion: 'latest',
  sourceType: 'script',
  allowAwaitOutsideFunction: true,
  allowImportExportEverywhere: true,
  allowHashBang: true,
};

/** A cell compiled for the REPL, with what is needed to map positions in it back to the cell. */
export interface CompiledCell {
  js: string;
  /** The edits that turned the type-stripped source into `js`, in the stripped source's offsets. */
  edits: Edit[];
  /** How far the stripped source is shifted from the cell's own (1 when an object literal was wrapped in brackets). */
  shift: number;
  /** Whether offsets in the stripped source are the cell's (false when types needed code generated, e.g. enums). */
  exact: boolean;
  /** When not exact: the stripped source, and swc's source map mappings from it to the cell. */
  generated?: { stripped: string; mappings: string };
  /** Top-level bindings by kind, released from the temporal dead zone if an interrupt leaves them there. */
  lexical: { const: string[]; let: string[] };
}

export function transpileCell(code: string, sourceName?: string): string {
  return compileCell(code, sourceName).js;
}

export function compileCell(code: string, sourceName?: string): CompiledCell {
  const compiled = (looksLikeObjectLiteral(code) && tryCompile(`(${code})`, 1)) || compileStatements(code, 0);
  if (sourceName) compiled.js = `${compiled.js}\n//# sourceURL=${sourceName}`;
  return compiled;
}

function tryCompile(code: string, shift: number): CompiledCell | undefined {
  try {
    return compileStatements(code, shift);
  } catch {
    return undefined;
  }
}

function looksLikeObjectLiteral(code: string): boolean {
  return /^\s*\{/.test(code) && /\}\s*;?\s*$/.test(code);
}

function compileStatements(code: string, shift: number): CompiledCell {
  const { js: stripped, exact, mappings } = strip(code);
  const program = parseScript(stripped);
  const edits = [...moduleSyntaxEdits(program, stripped), ...awaitGuardEdits(program)];
  const compiled: CompiledCell = { js: applyEdits(stripped, edits), edits: sortEdits(edits), shift, exact, lexical: topLevelBindings(program) };
  if (mappings) compiled.generated = { stripped, mappings };
  return compiled;
}

export function stripTypes(code: string): string {
  return strip(code).js;
}

function strip(code: string): { js: string; exact: boolean; mappings?: string } {
  try {
    return { js: transformSync(code, { mode: 'strip-only' }).code, exact: true };
  } catch (stripError) {
    // enums, namespaces and parameter properties need code generated, not just blanked out
    if (!/not supported in strip-only mode/.test(String(stripError))) throw swcSyntaxError(stripError);
    try {
      const { code: js, map } = transformSync(code, { mode: 'transform', sourceMap: true });
      return { js, exact: false, mappings: map ? (JSON.parse(map) as { mappings: string }).mappings : undefined };
    } catch (error) {
      throw swcSyntaxError(error);
    }
  }
}

export function parseScript(js: string): acorn.Program {
  try {
    return acorn.parse(js, PARSE_OPTIONS);
  } catch (error) {
    const { message, pos, loc } = error as SyntaxError & { pos?: number; loc?: { line: number; column: number } };
    const atEnd = pos !== undefined && pos >= js.trimEnd().length;
    throw new CellSyntaxError(message, atEnd || /^Unterminated (template|comment)/.test(message), [], loc && { line: loc.line, column: loc.column + 1 });
  }
}

/** swc throws its diagnostic as a string: "  x Message\n   ,-[1:1]\n 1 | code\n   :   ^\n …". */
function swcSyntaxError(thrown: unknown): CellSyntaxError {
  const text = String(thrown);
  const lines = text.split('\n');
  const message = (lines.find((line) => line.trim()) ?? text).trim().replace(/^x\s+/, '');
  const detail = lines.slice(1).filter((line) => /^\s*(\d+\s*\||:|,-|`-)/.test(line));
  return new CellSyntaxError(message, /Unexpected eof|got '?<eof>'?/i.test(message) || /^Unterminated (template|block comment)/i.test(message), detail, caretLocation(detail));
}

/** Where swc's snippet puts its caret: ` 2 | code` then `   :   ^`. */
function caretLocation(detail: string[]): { line: number; column: number } | undefined {
  const caret = detail.findIndex((line) => /^\s*:\s*\^/.test(line));
  const source = caret > 0 ? /^\s*(\d+) \| /.exec(detail[caret - 1]!) : null;
  if (!source) return undefined;
  const codeStart = source[0].length;
  return { line: Number(source[1]), column: detail[caret]!.indexOf('^') - codeStart + 1 };
}

export interface Edit {
  start: number;
  end: number;
  text: string;
}

function moduleSyntaxEdits(program: acorn.Program, js: string): Edit[] {
  const edits: Edit[] = [];
  const blank = (node: acorn.Node): Edit => ({ start: node.start, end: node.end, text: newlinesIn(js, node) });
  for (const statement of program.body) {
    switch (statement.type) {
      case 'ImportDeclaration':
        edits.push({ ...blank(statement), text: importAsAwait(statement, js) + newlinesIn(js, statement) });
        break;
      case 'ExportNamedDeclaration':
      case 'ExportDefaultDeclaration':
        if (statement.declaration) edits.push(...dropExportKeyword(statement, statement.declaration));
        else edits.push(blank(statement));
        break;
      case 'ExportAllDeclaration':
        edits.push(blank(statement));
        break;
    }
  }
  walk(program, {
    ImportExpression(node) {
      edits.push({ start: node.start, end: node.start + 'import'.length, text: IMPORT_HELPER });
    },
  });
  return edits;
}

function importAsAwait(node: acorn.ImportDeclaration, js: string): string {
  const source = js.slice(node.source.start, node.source.end);
  const attributes = node.attributes?.length ? `, { with: { ${node.attributes.map((a) => `${js.slice(a.key.start, a.key.end)}: ${js.slice(a.value.start, a.value.end)}`).join(', ')} } }` : '';
  const load = `await ${IMPORT_HELPER}(${source}${attributes})`;
  const namespace = node.specifiers.find((s) => s.type === 'ImportNamespaceSpecifier');
  const defaults = node.specifiers.find((s) => s.type === 'ImportDefaultSpecifier');
  if (namespace) {
    return `const ${namespace.local.name} = ${load};${defaults ? ` const ${defaults.local.name} = ${namespace.local.name}.default;` : ''}`;
  }
  if (node.specifiers.length === 0) return `${load};`;
  const fields = node.specifiers.map((s) => {
    if (s.type === 'ImportSpecifier') {
      const imported = s.imported.type === 'Identifier' ? s.imported.name : String(s.imported.value);
      return `${JSON.stringify(imported)}: ${s.local.name}`;
    }
    return `"default": ${s.local.name}`;
  });
  return `const { ${fields.join(', ')} } = ${load};`;
}

function dropExportKeyword(node: acorn.Node, declaration: acorn.Node): Edit[] {
  const anonymous = (declaration.type === 'FunctionDeclaration' || declaration.type === 'ClassDeclaration') && !(declaration as acorn.FunctionDeclaration).id;
  // without `export default`, an anonymous function or class is only valid as an expression
  return anonymous
    ? [
        { start: node.start, end: declaration.start, text: '(' },
        { start: declaration.end, end: declaration.end, text: ')' },
      ]
    : [{ start: node.start, end: declaration.start, text: '' }];
}

function newlinesIn(js: string, node: acorn.Node): string {
  return '\n'.repeat(js.slice(node.start, node.end).split('\n').length - 1);
}

/** In source order; at one offset, insertions before a replacement, and insertions in the order listed. */
function sortEdits(edits: Edit[]): Edit[] {
  const width = (edit: Edit) => edit.end - edit.start;
  return edits
    .map((edit, index) => ({ edit, index }))
    .sort((a, b) => a.edit.start - b.edit.start || width(a.edit) - width(b.edit) || a.index - b.index)
    .map(({ edit }) => edit);
}

function applyEdits(js: string, edits: Edit[]): string {
  let out = '';
  let at = 0;
  for (const edit of sortEdits(edits)) {
    out += js.slice(at, edit.start) + edit.text;
    at = edit.end;
  }
  return out + js.slice(at);
}
