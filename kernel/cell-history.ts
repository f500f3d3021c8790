/**
 * For the language service: the declarations of the cells run so far, as one TypeScript prelude
 * placed before the cell being edited. Only top-level declarations are kept (imports, variables,
 * functions, classes, interfaces, types, enums, namespaces): they are what later cells can see.
 * A cell may re-declare a name (re-running a cell, or `const data` defined anew), which V8's REPL
 * mode allows; in the prelude, every declaration but the newest of a name is renamed out of the
 * way, so the newest type wins and the file stays free of redeclaration errors.
 */
import type * as TS from 'typescript5';
import { ts } from './typescript.js';

/** Renamed-away names start with this; completion hides it. */
export const SHADOWED_PREFIX = '__tsgather_shadowed';

type Meaning = 'value' | 'type' | 'both';

interface DeclaredName {
  name: string;
  meaning: Meaning;
  /** Where the name is written, relative to the chunk's text. */
  start: number;
  end: number;
  /** Written as `{ a }` in an import (`as`) or a destructuring (`:`): a rename keeps the outer name. */
  keep?: 'as' | ':';
}

interface Chunk {
  text: string;
  names: DeclaredName[];
}

export class CellHistory {
  private readonly chunks: Chunk[][] = [];

  /** Adds an executed cell; one that does not parse adds nothing (it did not run either). */
  add(code: string): void {
    const chunks = declarationChunks(code);
    if (chunks) this.chunks.push(chunks);
  }

  clear(): void {
    this.chunks.length = 0;
  }

  /** The prelude, with every declaration that a later cell, or the edited cell, re-declares renamed away. */
  prelude(editedCell: string): string {
    const later = new Map<string, Set<Meaning>>();
    for (const { name, meaning } of declarationChunks(editedCell, false)?.flatMap((chunk) => chunk.names) ?? []) addMeaning(later, name, meaning);
    const texts: string[] = [];
    for (let cell = this.chunks.length - 1; cell >= 0; cell--) {
      const chunks = this.chunks[cell];
      const cellTexts = chunks.map((chunk, i) => renameShadowed(chunk, later, `${SHADOWED_PREFIX}_${cell}_${i}_`));
      for (const chunk of chunks) for (const { name, meaning } of chunk.names) addMeaning(later, name, meaning);
      texts.push(cellTexts.join('\n'));
    }
    return texts.reverse().join('\n');
  }
}

function addMeaning(map: Map<string, Set<Meaning>>, name: string, meaning: Meaning): void {
  const meanings = map.get(name) ?? new Set<Meaning>();
  meanings.add(meaning);
  map.set(name, meanings);
}

function shadows(later: Set<Meaning> | undefined, meaning: Meaning): boolean {
  if (!later) return false;
  return later.has('both') || meaning === 'both' || later.has(meaning);
}

function renameShadowed(chunk: Chunk, later: Map<string, Set<Meaning>>, prefix: string): string {
  let text = chunk.text;
  const renamed = chunk.names.filter((n) => shadows(later.get(n.name), n.meaning)).sort((a, b) => b.start - a.start);
  for (const n of renamed) {
    const replacement = n.keep ? `${n.name} ${n.keep === 'as' ? 'as' : ':'} ${prefix}${n.name}` : `${prefix}${n.name}`;
    text = text.slice(0, n.start) + replacement + text.slice(n.end);
  }
  return text;
}

/** Undefined if the cell has syntax errors and must have none (an edited cell is taken as it is). */
function declarationChunks(code: string, mustParse = true): Chunk[] | undefined {
  const file = ts.createSourceFile('cell.mts', code, ts.ScriptTarget.ESNext, true, ts.ScriptKind.TS);
  // parseDiagnostics is not in the public typings, but has been on every SourceFile for years
  if (mustParse && (file as unknown as { parseDiagnostics?: readonly TS.Diagnostic[] }).parseDiagnostics?.length) return undefined;
  const chunks: Chunk[] = [];
  for (const statement of file.statements) {
    const names = namesOf(statement);
    if (!names) continue;
    const start = statement.getStart(file, true);
    let text = code.slice(start, statement.end);
    // `export` and `export default` are dropped when a cell runs; here they would collide
    for (const modifier of ts.canHaveModifiers(statement) ? (ts.getModifiers(statement) ?? []) : []) {
      if (modifier.kind === ts.SyntaxKind.ExportKeyword || modifier.kind === ts.SyntaxKind.DefaultKeyword) {
        const from = modifier.getStart(file) - start;
        text = text.slice(0, from) + ' '.repeat(modifier.end - modifier.getStart(file)) + text.slice(modifier.end - start);
      }
    }
    chunks.push({
      text,
      names: names.map(({ node, meaning, keep }) => ({ name: node.text, meaning, keep, start: node.getStart(file) - start, end: node.end - start })),
    });
  }
  return chunks;
}

interface NameNode {
  node: TS.Identifier;
  meaning: Meaning;
  keep?: 'as' | ':';
}

function namesOf(statement: TS.Statement): NameNode[] | undefined {
  const named = (node: TS.Node | undefined, meaning: Meaning): NameNode[] => (node && ts.isIdentifier(node) ? [{ node, meaning }] : []);
  if (ts.isVariableStatement(statement)) return statement.declarationList.declarations.flatMap((d) => bindingNames(d.name));
  if (ts.isFunctionDeclaration(statement)) return named(statement.name, 'value');
  if (ts.isClassDeclaration(statement) || ts.isEnumDeclaration(statement) || ts.isModuleDeclaration(statement)) return named(statement.name, 'both');
  if (ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) return named(statement.name, 'type');
  if (ts.isImportEqualsDeclaration(statement)) return named(statement.name, 'both');
  if (ts.isImportDeclaration(statement)) {
    const clause = statement.importClause;
    if (!clause) return [];
    const names = named(clause.name, 'both');
    const bindings = clause.namedBindings;
    if (bindings && ts.isNamespaceImport(bindings)) names.push(...named(bindings.name, 'both'));
    if (bindings && ts.isNamedImports(bindings)) {
      for (const element of bindings.elements) names.push({ node: element.name, meaning: 'both', keep: element.propertyName ? undefined : 'as' });
    }
    return names;
  }
  return undefined;
}

function bindingNames(name: TS.BindingName): NameNode[] {
  if (ts.isIdentifier(name)) return [{ node: name, meaning: 'value' }];
  const shorthand = ts.isObjectBindingPattern(name);
  return name.elements.flatMap((element): NameNode[] => {
    if (ts.isOmittedExpression(element)) return [];
    if (shorthand && !element.propertyName && ts.isIdentifier(element.name)) return [{ node: element.name, meaning: 'value', keep: ':' }];
    return bindingNames(element.name);
  });
}
