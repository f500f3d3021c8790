/**
 * In the cell worker: the cells run so far and the functions cells shipped with define(), so that
 * a stack frame's position in the compiled JavaScript (`cell-3.ts:2:9`, or `define:f:3:11` from a
 * worker) can be shown as a line of the cell the user wrote.
 */
import * as acorn from 'acorn';
import { decodeMappings, type LineSegments, originalPosition } from './source-map.js';
import type { CompiledCell, Edit } from './transpile.js';

export interface CellText extends Omit<CompiledCell, 'js' | 'lexical'> {
  /** The source name the cell ran under, `cell-<execution count>.ts`. */
  name: string;
  /** What the user wrote. */
  code: string;
  /** What ran (its sourceURL comment last). */
  js: string;
}

export interface CellPosition {
  cell: CellText;
  /** 1-based, in the cell the user wrote. */
  line: number;
  column: number;
}

const KEPT_CELLS = 500;
const cells = new Map<string, CellText>();
/** define(name, fn): the source text shipped, by name, the latest definition winning. */
const definitions = new Map<string, string>();

export function rememberCell(cell: CellText): void {
  cells.delete(cell.name);
  cells.set(cell.name, cell);
  if (cells.size > KEPT_CELLS) cells.delete(cells.keys().next().value!);
}

export function rememberDefinition(name: string, source: string): void {
  definitions.set(name, source);
}

/** Whether a function's source text is text of a cell (native and generated functions are not). */
export function writtenInCell(source: string): boolean {
  if (source.endsWith('{ [native code] }')) return false;
  for (const cell of cells.values()) if (cell.js.includes(source)) return true;
  return false;
}

/** A position in a cell's compiled JavaScript (1-based, as stack frames give it), in the cell the user wrote. */
export function cellPosition(name: string, line: number, column: number): CellPosition | undefined {
  const cell = cells.get(name);
  if (!cell) return undefined;
  const offset = offsetOf(cell.js, line, column);
  return offset === undefined ? undefined : positionIn(cell, offset);
}

/**
 * A position in a definition as a worker ran it: the worker evaluates `(source)` (or `({source})`
 * for method shorthand), so the first line is shifted by that bracket. Found when the source is
 * text of a cell, as a function written in a cell is.
 */
export function definitionPosition(name: string, line: number, column: number): CellPosition | undefined {
  const source = definitions.get(name);
  if (!source) return undefined;
  const within = offsetOf(source, line, line === 1 ? column - openingBrackets(source) : column);
  if (within === undefined) return undefined;
  for (const cell of [...cells.values()].reverse()) {
    const start = cell.js.lastIndexOf(source);
    if (start >= 0) return positionIn(cell, start + within);
  }
  return undefined;
}

function openingBrackets(source: string): number {
  try {
    acorn.parseExpressionAt(`(${source})`, 0, { ecmaVersion: 'latest' });
    return 1;
  } catch {
    return 2;
  }
}

function positionIn(cell: CellText, generated: number): CellPosition | undefined {
  const offset = sourceOffset(cell.edits, generated);
  if (!cell.exact) return mappedPosition(cell, offset);
  const before = cell.code.slice(0, Math.min(Math.max(0, offset - cell.shift), cell.code.length)).split('\n');
  return { cell, line: before.length, column: before.at(-1)!.length + 1 };
}

/** Code was generated (an enum, a namespace): swc's source map says where a position came from. */
function mappedPosition(cell: CellText, offset: number): CellPosition | undefined {
  if (!cell.generated) return undefined;
  const before = cell.generated.stripped.slice(0, Math.max(0, offset)).split('\n');
  const segments = (decoded.get(cell) ?? decoded.set(cell, decodeMappings(cell.generated.mappings)).get(cell))!;
  const position = originalPosition(segments, before.length, before.at(-1)!.length + 1);
  if (!position) return undefined;
  // a wrapped object literal's bracket shifts the first line
  const column = position.line === 1 ? position.column - cell.shift : position.column;
  return { cell, line: position.line, column: Math.max(1, column) };
}

const decoded = new WeakMap<CellText, LineSegments>();

/** Maps an offset in the edited text back to the text before the edits (an offset inside inserted text maps to where it was inserted). */
function sourceOffset(edits: readonly Edit[], generated: number): number {
  let delta = 0;
  for (const edit of edits) {
    const start = edit.start + delta;
    if (generated < start) break;
    if (generated < start + edit.text.length) return edit.start;
    delta += edit.text.length - (edit.end - edit.start);
  }
  return generated - delta;
}

function offsetOf(text: string, line: number, column: number): number | undefined {
  let offset = 0;
  for (let current = 1; current < line; current++) {
    offset = text.indexOf('\n', offset) + 1;
    if (offset === 0) return undefined;
  }
  return offset + Math.max(0, column - 1);
}
