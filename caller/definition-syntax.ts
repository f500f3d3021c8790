/**
 * define()'s check of source text before it is shipped: a syntax error is reported by define
 * itself, with its position, not by every job that later runs on a worker. The text is parsed, never
 * run, the two ways a worker evaluates it (server/definitions.ts compileDefinition): as an expression
 * (`(source)`: arrow functions, function expressions, async ones), then as an object literal's
 * member (`({source})`: method shorthand).
 */
import type * as acorn from 'acorn';

type ParseError = SyntaxError & { loc?: { line: number; column: number } };

/** A definition's source, parsed. */
export interface ParsedDefinition {
  source: string;
  /** It is an object literal's method shorthand (`m(x) { … }`), not an expression. */
  method: boolean;
  /** The expression (or the object literal) that holds the function. */
  root: acorn.AnyNode;
  /** Characters before the source in the parsed text: an offset `at` of the tree is `at - prefix` in the source. */
  prefix: number;
}

export async function checkDefinitionSyntax(name: string, source: string): Promise<void> {
  await parseDefinition(`define('${name}')`, source);
}

/** Parses a definition's source as a worker will evaluate it; a SyntaxError says where, as `what: the source does not parse at …`. */
export async function parseDefinition(what: string, source: string): Promise<ParsedDefinition> {
  const acorn = await import('acorn');
  let first: { error: ParseError; prefix: number } | undefined;
  for (const [open, close] of [
    ['(', ')'],
    ['({', '})'],
  ] as const) {
    try {
      const program = acorn.parse(`${open}${source}${close}`, { ecmaVersion: 'latest', sourceType: 'script' });
      const statement = program.body[0];
      const root = statement?.type === 'ExpressionStatement' ? statement.expression : program;
      return { source, method: open === '({', root, prefix: open.length };
    } catch (error) {
      first ??= { error: error as ParseError, prefix: open.length };
    }
  }
  const loc = first!.error.loc;
  // Where in the source itself, counted from 1: the wrapping brackets shift the first line only.
  const where = loc ? ` at line ${loc.line}, column ${loc.line === 1 ? loc.column - first!.prefix + 1 : loc.column + 1}` : '';
  const message = first!.error.message.replace(/\s*\(\d+:\d+\)$/, '');
  throw new SyntaxError(`${what}: the source does not parse${where}: ${message}`);
}

/** The line (from 1) of offset `at` in the source, and that line's text, trimmed. */
export function lineAt(parsed: ParsedDefinition, at: number): { line: number; text: string } {
  const offset = Math.max(0, at - parsed.prefix);
  const before = parsed.source.slice(0, offset);
  const line = before.split('\n').length;
  const start = before.lastIndexOf('\n') + 1;
  const end = parsed.source.indexOf('\n', offset);
  return { line, text: parsed.source.slice(start, end < 0 ? undefined : end).trim() };
}
