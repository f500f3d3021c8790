/**
 * define()'s check of source text before it is shipped: a syntax error is reported by define
 * itself, with its position, not by every job that later runs on a worker. The text is parsed, never
 * run, the two ways a worker evaluates it (server/definitions.ts compileDefinition): as an expression
 * (`(source)`: arrow functions, function expressions, async ones), then as an object literal's
 * member (`({source})`: method shorthand).
 */

type ParseError = SyntaxError & { loc?: { line: number; column: number } };

export async function checkDefinitionSyntax(name: string, source: string): Promise<void> {
  const acorn = await import('acorn');
  let first: { error: ParseError; prefix: number } | undefined;
  for (const [open, close] of [
    ['(', ')'],
    ['({', '})'],
  ] as const) {
    try {
      acorn.parse(`${open}${source}${close}`, { ecmaVersion: 'latest', sourceType: 'script' });
      return;
    } catch (error) {
      first ??= { error: error as ParseError, prefix: open.length };
    }
  }
  const loc = first!.error.loc;
  // Where in the source itself, counted from 1: the wrapping brackets shift the first line only.
  const where = loc ? ` at line ${loc.line}, column ${loc.line === 1 ? loc.column - first!.prefix + 1 : loc.column + 1}` : '';
  const what = first!.error.message.replace(/\s*\(\d+:\d+\)$/, '');
  throw new SyntaxError(`define('${name}'): the source does not parse${where}: ${what}`);
}
