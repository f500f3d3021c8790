/**
 * Error outputs as ipykernel users know them: a traceback list coloured with ANSI escapes, with,
 * for each frame in a cell (or in a function a cell shipped with define), the cell's lines up to
 * the offending one, marked with an arrow and a caret, the most recent call last; then
 * `name: message`, then the JavaScript frames that are not the kernel's or tsgather's own.
 */
import { cellPosition, definitionPosition, type CellPosition } from './cell-sources.js';

const RED = '\x1b[0;31m';
const GREEN = '\x1b[0;32m';
const BOLD_GREEN = '\x1b[1;32m';
const CYAN = '\x1b[0;36m';
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

const CONTEXT_LINES = 3;
const MAX_BLOCKS = 8;
const RULE = '-'.repeat(75);

/** The inspector call that ran the cell: it and the frames below it are the kernel's machinery. */
const MACHINERY = /\(node:inspector[:)]/;
/** tsgather's compiled rooms (the caller library, the kernel's helpers a cell calls) and Node's internals: not the user's. */
const OWN_FRAME = /[\\/]dist[\\/](?:caller|cli|controller|embedded|kernel|protocol|runtime|server)[\\/][^\\/()]+\.js:\d+:\d+\)?$|\(?node:internal[\\/]/;

interface Frame {
  text: string;
  /** The function the frame is in, if it has a name. */
  name?: string;
  position?: CellPosition;
  /** The frame ran on a worker: a function shipped with define(name). */
  definition?: string;
}

/** The traceback list for an error: `stack` is the error's (the frames after its message). */
export function formatTraceback(ename: string, evalue: string, stack: string | undefined, note?: string): string[] {
  const frames = userFrames(stack);
  const blocks = frames
    .filter((frame) => frame.position)
    .slice(0, MAX_BLOCKS)
    .reverse()
    .map(contextBlock);
  const lines = [`${RED}${RULE}${RESET}`, `${RED}${ename}${RESET}${' '.repeat(Math.max(1, 42 - ename.length))}Traceback (most recent call last)`, ...blocks, `${RED}${ename}${RESET}: ${evalue}`];
  if (frames.length > 0) lines.push(frames.map((frame) => `${DIM}${frame.text}${RESET}`).join('\n'));
  if (note) lines.push(`${DIM}${note}${RESET}`);
  return lines;
}

/** A syntax error at a known place in a cell: its lines up to it, with a caret. */
export function syntaxErrorTraceback(ename: string, evalue: string, code: string, at: { line: number; column: number }, sourceName: string): string[] {
  return [`${RED}${RULE}${RESET}`, block(cellHeader(sourceName, at.line), code, at.line, at.column), `${RED}${ename}${RESET}: ${evalue}`];
}

/** `Cell In[3], line 2`, as IPython heads a frame of cell 3 (an unnumbered execution goes by its source name). */
function cellHeader(sourceName: string, line: number): string {
  const count = /^cell-(\d+)\.ts$/.exec(sourceName)?.[1];
  return `Cell ${GREEN}${count ? `In[${count}]` : sourceName}, line ${line}${RESET}`;
}

function userFrames(stack: string | undefined): Frame[] {
  const all = (stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  const machinery = all.findIndex((line) => MACHINERY.test(line));
  const kept = (machinery >= 0 ? all.slice(0, machinery) : all).filter((line) => !OWN_FRAME.test(line));
  return kept.map(parseFrame);
}

const LOCATION = /^(\s+at (?:async )?)(?:(.*?) \()?([^()\s]+):(\d+):(\d+)\)?$/;

function parseFrame(line: string): Frame {
  const text = line.trimEnd();
  const match = LOCATION.exec(text);
  if (!match) return { text };
  const [, at, name, location, row, col] = match as unknown as [string, string, string | undefined, string, string, string];
  const frame: Frame = { text, name: name?.replace(/^Object\./, '').replace(/ \[as \w+\]$/, '') };
  frame.position = cellPosition(location, Number(row), Number(col));
  if (!frame.position && location.startsWith('define:')) {
    frame.definition = decoded(location.slice('define:'.length));
    frame.position = definitionPosition(frame.definition, Number(row), Number(col));
  }
  if (frame.position) {
    const { cell, line, column } = frame.position;
    frame.text = `${at}${name ? `${name} (` : ''}${cell.name}:${line}:${column}${name ? ')' : ''}${frame.definition ? ` [define('${frame.definition}'), on a worker]` : ''}`;
  }
  return frame;
}

function contextBlock(frame: Frame): string {
  const { cell, line, column } = frame.position!;
  const inFunction = frame.name && frame.name !== '<anonymous>' ? `, in ${CYAN}${frame.name}${RESET}` : '';
  const where = frame.definition ? ` ${DIM}(define('${frame.definition}'), on a worker)${RESET}` : '';
  return block(`${cellHeader(cell.name, line)}${inFunction}${where}`, cell.code, line, column);
}

function block(header: string, code: string, line: number, column: number): string {
  const lines = code.split('\n');
  const width = Math.max(String(line).length, 6);
  const out = [header];
  for (let number = Math.max(1, line - CONTEXT_LINES); number < line; number++) {
    out.push(`${BOLD_GREEN}${String(number).padStart(width + 1)}${RESET} ${lines[number - 1] ?? ''}`);
  }
  const arrow = `----> ${line}`;
  out.push(`${GREEN}${arrow.padStart(width + 1)}${RESET} ${lines[line - 1] ?? ''}`);
  out.push(`${' '.repeat(Math.max(width + 1, arrow.length) + column)}${RED}^${RESET}`);
  return `${out.join('\n')}\n`;
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
