/**
 * The free names of a function's source: the identifiers it reads or writes that none of its own
 * scopes declare (parameters, var/let/const, functions, classes, catch clauses), in the order they
 * first appear, with where. A scope's declarations are collected when it is entered (hoisting), so
 * a use before its declaration still resolves. Property names, labels and `import.meta` are not names.
 */
import type * as acorn from 'acorn';

export interface FreeName {
  name: string;
  /** Offset of its first use in the parsed text. */
  at: number;
  /** It is used under `typeof` somewhere: the function checks whether the name exists (`typeof window !== 'undefined'`). */
  guarded: boolean;
}

type AnyNode = acorn.AnyNode;

class Scope {
  private readonly names = new Set<string>();
  constructor(private readonly parent?: Scope) {}

  declare(name: string): void {
    this.names.add(name);
  }

  has(name: string): boolean {
    return this.names.has(name) || (this.parent?.has(name) ?? false);
  }
}

/** The free names of `root` (an expression or program of parsed source). */
export function freeNames(root: AnyNode): FreeName[] {
  const found = new Map<string, FreeName>();
  const reference = (name: string, at: number, guarded = false) => {
    const seen = found.get(name);
    if (!seen) found.set(name, { name, at, guarded });
    else if (guarded) seen.guarded = true;
  };
  new Walker((name, at, scope, guarded) => {
    if (!scope.has(name)) reference(name, at, guarded);
  }).visit(root, new Scope());
  return [...found.values()];
}

type Use = (name: string, at: number, scope: Scope, guarded?: boolean) => void;

function isNode(value: unknown): value is AnyNode {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

class Walker {
  constructor(private readonly use: Use) {}

  visit(node: AnyNode | null | undefined, scope: Scope): void {
    if (!node) return;
    switch (node.type) {
      case 'Identifier':
        return this.use(node.name, node.start, scope);
      case 'UnaryExpression':
        if (node.operator === 'typeof' && node.argument.type === 'Identifier') return this.use(node.argument.name, node.argument.start, scope, true);
        return this.visit(node.argument, scope);
      case 'MemberExpression':
        this.visit(node.object, scope);
        if (node.computed) this.visit(node.property, scope);
        return;
      case 'Property':
      case 'MethodDefinition':
      case 'PropertyDefinition':
        if (node.computed) this.visit(node.key, scope);
        return this.visit(node.value, scope);
      case 'LabeledStatement':
        return this.visit(node.body, scope);
      case 'BreakStatement':
      case 'ContinueStatement':
      case 'MetaProperty':
        return;
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        return this.visitFunction(node, scope);
      case 'ClassDeclaration':
      case 'ClassExpression':
        return this.visitClass(node, scope);
      case 'BlockStatement':
      case 'StaticBlock':
        return this.visitBlock(node.body, new Scope(scope));
      case 'Program':
        return this.visitFunctionBody(node.body, new Scope(scope), node);
      case 'SwitchStatement': {
        this.visit(node.discriminant, scope);
        const inner = new Scope(scope);
        declareLexical(
          node.cases.flatMap((c) => c.consequent),
          inner,
        );
        for (const c of node.cases) {
          this.visit(c.test, inner);
          for (const statement of c.consequent) this.visit(statement, inner);
        }
        return;
      }
      case 'ForStatement':
      case 'ForInStatement':
      case 'ForOfStatement': {
        const inner = new Scope(scope);
        const head = node.type === 'ForStatement' ? node.init : node.left;
        if (head?.type === 'VariableDeclaration') {
          if (head.kind !== 'var') for (const d of head.declarations) declarePattern(d.id, inner);
        }
        if (node.type === 'ForStatement') {
          this.visit(node.init, inner);
          this.visit(node.test, inner);
          this.visit(node.update, inner);
        } else {
          if (node.left.type === 'VariableDeclaration') this.visit(node.left, inner);
          else this.visitPattern(node.left, inner, false);
          this.visit(node.right, inner);
        }
        return this.visit(node.body, inner);
      }
      case 'CatchClause': {
        const inner = new Scope(scope);
        if (node.param) {
          declarePattern(node.param, inner);
          this.visitPattern(node.param, inner, true);
        }
        return this.visit(node.body, inner);
      }
      case 'VariableDeclaration':
        for (const d of node.declarations) {
          this.visitPattern(d.id, scope, true);
          this.visit(d.init, scope);
        }
        return;
      case 'AssignmentExpression':
        this.visitPattern(node.left, scope, false);
        return this.visit(node.right, scope);
      default:
        return this.visitChildren(node, scope);
    }
  }

  private visitChildren(node: AnyNode, scope: Scope): void {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'type' || key === 'start' || key === 'end' || key === 'loc' || key === 'range') continue;
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) this.visit(item, scope);
      } else if (isNode(value)) {
        this.visit(value, scope);
      }
    }
  }

  private visitFunction(node: acorn.Function, outer: Scope): void {
    const scope = new Scope(outer);
    // A function expression's own name is seen inside it only; a declaration's is its enclosing scope's (declared there).
    if (node.type === 'FunctionExpression' && node.id) scope.declare(node.id.name);
    for (const param of node.params) declarePattern(param, scope);
    for (const param of node.params) this.visitPattern(param, scope, true);
    if (node.body.type === 'BlockStatement') this.visitFunctionBody(node.body.body, scope, node.body);
    else this.visit(node.body, scope);
  }

  private visitFunctionBody(statements: AnyNode[], scope: Scope, body: AnyNode): void {
    hoistVars(body, scope);
    this.visitBlock(statements, scope);
  }

  private visitBlock(statements: AnyNode[], scope: Scope): void {
    declareLexical(statements, scope);
    for (const statement of statements) this.visit(statement, scope);
  }

  private visitClass(node: acorn.Class, outer: Scope): void {
    this.visit(node.superClass, outer);
    const scope = new Scope(outer);
    if (node.id) scope.declare(node.id.name);
    for (const member of node.body.body) this.visit(member, scope);
  }

  /**
   * A pattern's default values and computed keys are read. Its names are uses in an assignment's
   * target (`[a, b.c] = …`), and declared, not used, in a declaration or a parameter (`declaring`).
   */
  private visitPattern(pattern: AnyNode, scope: Scope, declaring: boolean): void {
    switch (pattern.type) {
      case 'Identifier':
        if (!declaring) this.use(pattern.name, pattern.start, scope);
        return;
      case 'ObjectPattern':
        for (const p of pattern.properties) {
          if (p.type === 'RestElement') this.visitPattern(p.argument, scope, declaring);
          else {
            if (p.computed) this.visit(p.key, scope);
            this.visitPattern(p.value, scope, declaring);
          }
        }
        return;
      case 'ArrayPattern':
        for (const element of pattern.elements) if (element) this.visitPattern(element, scope, declaring);
        return;
      case 'AssignmentPattern':
        this.visitPattern(pattern.left, scope, declaring);
        return this.visit(pattern.right, scope);
      case 'RestElement':
        return this.visitPattern(pattern.argument, scope, declaring);
      default:
        // An assignment's member target (`a.b = …`) reads `a`; a declaration has no other kind.
        if (!declaring) this.visit(pattern, scope);
    }
  }
}

function declarePattern(pattern: AnyNode, scope: Scope): void {
  switch (pattern.type) {
    case 'Identifier':
      return scope.declare(pattern.name);
    case 'ObjectPattern':
      for (const p of pattern.properties) declarePattern(p.type === 'RestElement' ? p.argument : p.value, scope);
      return;
    case 'ArrayPattern':
      for (const element of pattern.elements) if (element) declarePattern(element, scope);
      return;
    case 'AssignmentPattern':
      return declarePattern(pattern.left, scope);
    case 'RestElement':
      return declarePattern(pattern.argument, scope);
  }
}

/** let, const, class and function declarations directly in a block belong to it. */
function declareLexical(statements: AnyNode[], scope: Scope): void {
  for (const statement of statements) {
    if (statement.type === 'VariableDeclaration' && statement.kind !== 'var') for (const d of statement.declarations) declarePattern(d.id, scope);
    else if ((statement.type === 'ClassDeclaration' || statement.type === 'FunctionDeclaration') && statement.id) scope.declare(statement.id.name);
  }
}

/** `var` declarations anywhere in a function body (not in nested functions), and, leniently, nested function declarations, belong to the function. */
function hoistVars(node: AnyNode | null | undefined, scope: Scope): void {
  if (!node) return;
  switch (node.type) {
    case 'VariableDeclaration':
      if (node.kind === 'var') for (const d of node.declarations) declarePattern(d.id, scope);
      return;
    case 'FunctionDeclaration':
      if (node.id) scope.declare(node.id.name);
      return;
    case 'Program':
    case 'BlockStatement':
    case 'StaticBlock':
      for (const statement of node.body) hoistVars(statement, scope);
      return;
    case 'IfStatement':
      hoistVars(node.consequent, scope);
      return hoistVars(node.alternate, scope);
    case 'ForStatement':
      hoistVars(node.init, scope);
      return hoistVars(node.body, scope);
    case 'ForInStatement':
    case 'ForOfStatement':
      hoistVars(node.left, scope);
      return hoistVars(node.body, scope);
    case 'WhileStatement':
    case 'DoWhileStatement':
    case 'LabeledStatement':
    case 'WithStatement':
      return hoistVars(node.body, scope);
    case 'TryStatement':
      hoistVars(node.block, scope);
      hoistVars(node.handler?.body, scope);
      return hoistVars(node.finalizer, scope);
    case 'SwitchStatement':
      for (const c of node.cases) for (const statement of c.consequent) hoistVars(statement, scope);
      return;
  }
}
