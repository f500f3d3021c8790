/**
 * In the cell worker: completion and inspection at a cursor (UTF-16 offsets). Objects are
 * evaluated only when V8 proves the expression free of side effects, so a Tab never runs code.
 */
import { plainText } from './format.js';
import type { Evaluator } from './evaluate.js';
import type { Completion, Inspection } from './worker-messages.js';

const IDENTIFIER = /^[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*$/u;
const IDENTIFIER_TAIL = /[\p{ID_Continue}$\u200c\u200d]*$/u;
const IDENTIFIER_HEAD = /^[\p{ID_Continue}$\u200c\u200d]*/u;
/** `a.b?.c.` (the object part of a member access that ends right before the cursor's word). */
const MEMBER_CHAIN = /([\p{ID_Start}$_][\p{ID_Continue}$]*(?:\s*\??\.\s*[\p{ID_Start}$_][\p{ID_Continue}$]*)*)\s*\??\.\s*$/u;
/** Enough context for a member chain; keeps the anchored regexes cheap on long cells. */
const LOOKBEHIND = 400;

const KEYWORDS = `await break case catch class const continue debugger default delete do else enum export extends
  false finally for function if import in instanceof let new null return static super switch this throw true try
  typeof undefined var void while with yield async of`.split(/\s+/);

/** Names of the kernel's own plumbing, hidden from completion. */
const INTERNAL = /^__tsgather/;

export async function complete(evaluator: Evaluator, code: string, cursor: number): Promise<Completion> {
  const before = code.slice(Math.max(0, cursor - LOOKBEHIND), cursor);
  const prefix = IDENTIFIER_TAIL.exec(before)?.[0] ?? '';
  const start = cursor - prefix.length;
  const chain = MEMBER_CHAIN.exec(before.slice(0, before.length - prefix.length))?.[1];
  const candidates = chain ? await memberNames(evaluator, chain) : await globalNames(evaluator);
  const hideDunder = !prefix.startsWith('_');
  const matches = [...new Set(candidates)]
    .filter((name) => name.startsWith(prefix) && IDENTIFIER.test(name) && !INTERNAL.test(name))
    .filter((name) => !(hideDunder && name.startsWith('__')))
    .sort((a, b) => Number(a.startsWith('_')) - Number(b.startsWith('_')) || a.localeCompare(b));
  return { matches, start, end: cursor };
}

async function memberNames(evaluator: Evaluator, chain: string): Promise<string[]> {
  const evaluation = await evaluator.peek(chain);
  if (evaluation.kind !== 'value' || evaluation.value == null) return [];
  return propertyNames(Object(evaluation.value));
}

async function globalNames(evaluator: Evaluator): Promise<string[]> {
  return [...(await evaluator.globalLexicalNames()), ...propertyNames(globalThis), ...KEYWORDS];
}

function propertyNames(object: object): string[] {
  const names: string[] = [];
  for (let o: object | null = object, depth = 0; o && depth < 32; o = Object.getPrototypeOf(o), depth++) {
    names.push(...Object.getOwnPropertyNames(o));
  }
  return names;
}

export async function inspectAt(evaluator: Evaluator, code: string, cursor: number, detail: 0 | 1): Promise<Inspection> {
  const before = code.slice(Math.max(0, cursor - LOOKBEHIND), cursor);
  const word = (IDENTIFIER_TAIL.exec(before)?.[0] ?? '') + (IDENTIFIER_HEAD.exec(code.slice(cursor))?.[0] ?? '');
  if (!word || !IDENTIFIER.test(word)) return { found: false, data: {} };
  const head = before.slice(0, before.length - (IDENTIFIER_TAIL.exec(before)?.[0].length ?? 0));
  const chain = MEMBER_CHAIN.exec(head)?.[1];
  const expression = chain ? `${chain}.${word}` : word;
  const evaluation = await evaluator.peek(expression);
  if (evaluation.kind !== 'value') return { found: false, data: {} };
  const { value } = evaluation;
  return { found: true, data: { 'text/plain': describe(expression.replace(/\s+/g, ''), value, detail) }, value: valueKind(value) };
}

function valueKind(value: unknown): Inspection['value'] {
  if (typeof value === 'function') return 'function';
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'plain';
  const prototype = Object.getPrototypeOf(value);
  return prototype === null || prototype === Object.prototype ? 'plain' : 'instance';
}

function describe(name: string, value: unknown, detail: 0 | 1): string {
  if (typeof value === 'function') {
    const source = Function.prototype.toString.call(value);
    const kind = /^class\b/.test(source) ? 'class' : 'function';
    if (detail === 1) return `${name}: ${kind}\n\n${source}`;
    const signature = source.split('\n')[0].replace(/\s*\{\s*$/, '');
    return `${name}: ${kind}\n${signature}`;
  }
  const type = value === null ? 'null' : typeof value === 'object' ? (value.constructor?.name ?? 'Object') : typeof value;
  return `${name}: ${type}\n${plainText(value, detail === 1 ? 4 : 1)}`;
}
