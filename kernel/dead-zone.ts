/**
 * In the cell worker: `const x = await slow()` interrupted leaves `x` declared but never
 * initialised, and every later read of it throws. Such names are declared again (REPL mode allows
 * it) as undefined; names the cell did initialise keep their values.
 */
import type { Evaluator } from './evaluate.js';

/** Global eval: it sees the global lexical scope, where cells' top-level declarations live. */
// biome-ignore lint/security/noGlobalEval: reads a top-level binding by name, to see whether it is initialised
const globalEval = globalThis.eval;

export async function releaseDeadZone(evaluator: Evaluator, names: { const: string[]; let: string[] }): Promise<void> {
  const consts = names.const.filter(uninitialised);
  const lets = names.let.filter(uninitialised);
  const script = [consts.length > 0 ? `const ${consts.map((name) => `${name} = undefined`).join(', ')};` : '', lets.length > 0 ? `let ${lets.join(', ')};` : ''].join(' ');
  if (!script.trim()) return;
  const released = await evaluator.run(script);
  if (released.kind === 'thrown') throw released.value;
}

function uninitialised(name: string): boolean {
  try {
    globalEval(name);
    return false;
  } catch (error) {
    return error instanceof ReferenceError;
  }
}
