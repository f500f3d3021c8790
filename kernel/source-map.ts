/**
 * The one thing the kernel needs from a source map: where a position of generated code came from.
 * swc gives one when it has to generate code for a cell (an enum, a namespace).
 */

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Per generated line, its segments as [generated column, source line, source column] (0-based), in order. */
export type LineSegments = Array<Array<[number, number, number]>>;

export function decodeMappings(mappings: string): LineSegments {
  const lines: LineSegments = [];
  let sourceLine = 0;
  let sourceColumn = 0;
  for (const line of mappings.split(';')) {
    const segments: Array<[number, number, number]> = [];
    let column = 0;
    for (const segment of line.split(',')) {
      if (!segment) continue;
      const fields = vlq(segment);
      column += fields[0]!;
      if (fields.length < 4) continue;
      sourceLine += fields[2]!;
      sourceColumn += fields[3]!;
      segments.push([column, sourceLine, sourceColumn]);
    }
    lines.push(segments);
  }
  return lines;
}

/** The source position (1-based) of a generated one (1-based), from the segment at or before it. */
export function originalPosition(lines: LineSegments, line: number, column: number): { line: number; column: number } | undefined {
  const segments = lines[line - 1];
  if (!segments?.length) return undefined;
  let found = segments[0]!;
  for (const segment of segments) {
    if (segment[0] > column - 1) break;
    found = segment;
  }
  return { line: found[1] + 1, column: found[2] + 1 + Math.max(0, column - 1 - found[0]) };
}

function vlq(segment: string): number[] {
  const values: number[] = [];
  let value = 0;
  let shift = 0;
  for (const char of segment) {
    const digit = BASE64.indexOf(char);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    values.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0;
    shift = 0;
  }
  return values;
}
