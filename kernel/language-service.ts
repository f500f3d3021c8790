/**
 * Completion and inspection from types: TypeScript's language service over the cell being edited,
 * placed after the declarations of the cells run so far. Offsets are UTF-16, relative to the cell.
 */
import type * as TS from 'typescript5';
import { ts } from './typescript.js';
import { installCellGlobals } from './cell-globals.js';
import { CellHistory, SHADOWED_PREFIX } from './cell-history.js';
import { LanguageHost } from './language-host.js';
import { formatQuickInfo, formatSignatures, type Formatted } from './type-docs.js';

export type CursorContext = 'code' | 'string' | 'comment';

export interface TypedCompletion {
  context: CursorContext;
  /** Undefined when the types know nothing here (a member of an `any`): the runtime may. */
  matches?: Array<{ name: string; kind: string }>;
  start: number;
  end: number;
}

export interface TypedInspection {
  context: CursorContext;
  found: boolean;
  text?: Formatted;
  /** The name at the cursor is typed `any` (or unknown to the types): the runtime value may tell more. */
  untyped: boolean;
}

const IDENTIFIER_TAIL = /[\p{ID_Continue}$\u200c\u200d]*$/u;
const IDENTIFIER_HEAD = /^[\p{ID_Continue}$\u200c\u200d]*/u;
const MEMBER_ACCESS = /\??\.\s*$/;
const HIDDEN = new RegExp(`^(${SHADOWED_PREFIX}|__tsgather)`);

const COMPLETION_OPTIONS: TS.GetCompletionsAtPositionOptions = {
  includeCompletionsForModuleExports: false,
  includeCompletionsWithInsertText: false,
  includeCompletionsForImportStatements: false,
};

export class CellLanguageService {
  private readonly host: LanguageHost;
  private readonly history = new CellHistory();

  constructor(cwd: string) {
    this.host = new LanguageHost(cwd);
    installCellGlobals(this.host);
  }

  /** The cells run so far, in order; `reset` starts the history over (a restarted kernel has no variables). */
  addCells(cells: readonly string[], reset = false): void {
    if (reset) this.history.clear();
    for (const cell of cells) this.history.add(cell);
    // a cell has run since: perhaps one that installed a package
    if (cells.length > 0) this.host.retryMissingPackages();
  }

  complete(code: string, cursor: number): TypedCompletion {
    const offset = this.edit(code);
    const position = offset + cursor;
    const context = this.contextAt(position);
    const before = code.slice(0, cursor);
    const prefix = context === 'code' ? (IDENTIFIER_TAIL.exec(before)?.[0] ?? '') : '';
    let start = cursor - prefix.length;
    let end = cursor;
    if (context === 'comment') return { context, matches: [], start, end };
    const info = this.host.service.getCompletionsAtPosition(this.host.cellFile, position, COMPLETION_OPTIONS);
    const entries = info?.entries.filter((entry) => !HIDDEN.test(entry.name) && !entry.hasAction && !entry.source) ?? [];
    const span = entries.find((entry) => entry.replacementSpan)?.replacementSpan;
    if (span && span.start - offset <= cursor) {
      start = span.start - offset;
      end = Math.max(cursor, span.start + span.length - offset);
    }
    const member = context === 'code' && MEMBER_ACCESS.test(before.slice(0, before.length - prefix.length));
    if (member && entries.length === 0) return { context, start, end };
    const typed = code.slice(start, cursor);
    const lower = typed.toLowerCase();
    const matches = entries
      .filter((entry) => entry.name.toLowerCase().startsWith(lower))
      .sort((a, b) => Number(!a.name.startsWith(typed)) - Number(!b.name.startsWith(typed)) || a.sortText.localeCompare(b.sortText) || a.name.localeCompare(b.name))
      .map((entry) => ({ name: entry.name, kind: entry.kind }));
    return { context, matches: dedupe(matches), start, end };
  }

  inspect(code: string, cursor: number, detail: 0 | 1): TypedInspection {
    const offset = this.edit(code);
    const context = this.contextAt(offset + cursor);
    if (context !== 'code') return { context, found: false, untyped: false };
    const service = this.host.service;
    const wordStart = cursor - (IDENTIFIER_TAIL.exec(code.slice(0, cursor))?.[0].length ?? 0);
    const wordEnd = cursor + (IDENTIFIER_HEAD.exec(code.slice(cursor))?.[0].length ?? 0);
    if (wordEnd > wordStart) {
      const position = offset + wordStart;
      const info = service.getQuickInfoAtPosition(this.host.cellFile, position);
      if (info) {
        const source = detail === 1 ? this.definitionSource(position, offset) : undefined;
        return { context, found: true, text: formatQuickInfo(info, source), untyped: this.isAny(position) };
      }
    }
    const help = service.getSignatureHelpItems(this.host.cellFile, offset + cursor, undefined);
    if (help?.items.length) return { context, found: true, text: formatSignatures(help, detail), untyped: false };
    return { context, found: false, untyped: wordEnd > wordStart };
  }

  /** Puts the edited cell after the prelude; returns where the cell starts in the file. */
  private edit(code: string): number {
    const prelude = this.history.prelude(code);
    // the `;` keeps a cell that starts with `(` or `[` from continuing the prelude's last statement
    const head = prelude ? `${prelude};\n` : '';
    this.host.setText(this.host.cellFile, head + code);
    return head.length;
  }

  private contextAt(position: number): CursorContext {
    const file = this.host.cellFile;
    if (this.host.service.getSpanOfEnclosingComment(file, position, false)) return 'comment';
    const source = this.host.program().getSourceFile(file);
    const token = source && tokenEndingAt(source, position);
    return token && insideLiteral(token, position, source) ? 'string' : 'code';
  }

  private isAny(position: number): boolean {
    const program = this.host.program();
    const source = program.getSourceFile(this.host.cellFile);
    const token = source && tokenEndingAt(source, position + 1);
    if (!token || !ts.isIdentifier(token)) return false;
    return (program.getTypeChecker().getTypeAtLocation(token).flags & ts.TypeFlags.Any) !== 0;
  }

  /** The TypeScript source of a declaration made in a cell (types and all). */
  private definitionSource(position: number, offset: number): string | undefined {
    const definition = this.host.service.getDefinitionAtPosition(this.host.cellFile, position)?.find((d) => d.fileName === this.host.cellFile && d.contextSpan);
    const span = definition?.contextSpan;
    if (!span) return undefined;
    const text = this.host.text(this.host.cellFile);
    // a declaration in the edited cell itself, or in the prelude (then it is the newest of its name)
    return span.start >= offset || !text.slice(span.start, span.start + span.length).includes(SHADOWED_PREFIX) ? text.slice(span.start, span.start + span.length) : undefined;
  }
}

function dedupe<T extends { name: string }>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((item) => !seen.has(item.name) && seen.add(item.name));
}

/** The innermost token that starts before the position and reaches it. */
function tokenEndingAt(source: TS.SourceFile, position: number): TS.Node | undefined {
  let node: TS.Node = source;
  for (;;) {
    const child = node.getChildren(source).find((c) => c.kind !== ts.SyntaxKind.JSDoc && c.getStart(source) < position && position <= c.end);
    if (!child) return node === source ? undefined : node;
    node = child;
  }
}

/** Whether the position is within the text of a string, template or regular expression literal. */
function insideLiteral(token: TS.Node, position: number, source: TS.SourceFile): boolean {
  const start = token.getStart(source);
  const unterminated = (token as TS.LiteralLikeNode).isUnterminated === true;
  switch (token.kind) {
    case ts.SyntaxKind.StringLiteral:
    case ts.SyntaxKind.NoSubstitutionTemplateLiteral:
    case ts.SyntaxKind.TemplateTail:
    case ts.SyntaxKind.RegularExpressionLiteral:
      return position > start && (position < token.end || unterminated);
    case ts.SyntaxKind.TemplateHead:
    case ts.SyntaxKind.TemplateMiddle:
      return position > start && position <= token.end - 2;
    default:
      return false;
  }
}
