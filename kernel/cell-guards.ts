/**
 * What the transpiler adds to a cell so that an interrupt can stop it (see cell-run.ts): every
 * `await x` becomes `await guard(x)` and every `for await (… of it)` iterates `guard(it)`, at any
 * depth, functions included. The guard is looked up on globalThis with the identity as fallback,
 * so a cell's function shipped elsewhere as source text (define, a browser's evaluate) still runs.
 * And the names a cell declares at top level, which an interrupt may leave uninitialised.
 */
import type * as acorn from 'acorn';
import { ancestor } from 'acorn-walk';
import type { Edit } from './transpile.js';

export const AWAIT_GUARD = '__tsgather_await';
export const ITERATE_GUARD = '__tsgather_iterate';

const guardCall = (name: string) => `(globalThis.${name} ?? ((v) => v))(`;

export function awaitGuardEdits(program: acorn.Program): Edit[] {
  const edits: Edit[] = [];
  const wrap = (node: acorn.Node, guard: string) => {
    edits.push({ start: node.start, end: node.start, text: guardCall(guard) }, { start: node.end, end: node.end, text: ')' });
  };
  ancestor(program, {
    AwaitExpression(node) {
      wrap(node.argument, AWAIT_GUARD);
    },
    ForOfStatement(node) {
      if (node.await) wrap(node.right, ITERATE_GUARD);
    },
  });
  return edits;
}

/** The let, const and class names a cell declares at top level (imports become consts). */
export function topLevelBindings(program: acorn.Program): { const: string[]; let: string[] } {
  const bindings = { const: [] as string[], let: [] as string[] };
  const declare = (statement: acorn.Statement | acorn.ModuleDeclaration): void => {
    switch (statement.type) {
      case 'VariableDeclaration':
        if (statement.kind === 'const' || statement.kind === 'let') {
          for (const declarator of statement.declarations) bindings[statement.kind].push(...patternNames(declarator.id));
        }
        break;
      case 'ClassDeclaration':
        if (statement.id) bindings.let.push(statement.id.name);
        break;
      case 'ImportDeclaration':
        bindings.const.push(...statement.specifiers.map((specifier) => specifier.local.name));
        break;
      case 'ExportNamedDeclaration':
      case 'ExportDefaultDeclaration':
        if (statement.declaration) declare(statement.declaration as acorn.Declaration);
        break;
    }
  };
  for (const statement of program.body) declare(statement);
  return bindings;
}

function patternNames(pattern: acorn.Pattern): string[] {
  switch (pattern.type) {
    case 'Identifier':
      return [pattern.name];
    case 'ObjectPattern':
      return pattern.properties.flatMap((property) => patternNames(property.type === 'RestElement' ? property.argument : property.value));
    case 'ArrayPattern':
      return pattern.elements.flatMap((element) => (element ? patternNames(element) : []));
    case 'RestElement':
      return patternNames(pattern.argument);
    case 'AssignmentPattern':
      return patternNames(pattern.left);
    default:
      return [];
  }
}
