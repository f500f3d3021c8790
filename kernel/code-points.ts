/** Jupyter counts cursor positions in Unicode code points; JavaScript strings index UTF-16 units. */

export function codePointToUtf16(text: string, codePoints: number): number {
  let units = 0;
  for (let seen = 0; seen < codePoints && units < text.length; seen++) {
    units += (text.codePointAt(units) ?? 0) > 0xffff ? 2 : 1;
  }
  return units;
}

export function utf16ToCodePoint(text: string, units: number): number {
  let codePoints = 0;
  for (let i = 0; i < units && i < text.length; codePoints++) {
    i += (text.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
  }
  return codePoints;
}
