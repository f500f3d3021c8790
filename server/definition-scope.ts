/**
 * Compiles a definition in the scope its caller shipped with it: every captured name becomes a
 * variable of a function around the source (a value decoded, a function compiled from its source,
 * a module binding filled in once its import resolves), next to the importer and `require` that
 * resolve from the caller's directory. Captured functions see each other and themselves, as they
 * did in the notebook. A definition with module bindings waits for their imports before its first
 * job runs; afterwards its jobs call the function directly.
 */
import { Buffer } from 'node:buffer';
import vm from 'node:vm';
import { CAPTURE_NAME, DEFINITION_IMPORT, decodeParsed, type CapturedName, type DefinitionSpec } from '../protocol/index.js';
import type { Importer } from './module-importer.js';

export type JobFunction = (...args: unknown[]) => unknown;

interface ScopeValues {
  importer: Importer;
  values: unknown[];
  method: (holder: object) => unknown;
  load: (index: number) => Promise<unknown>;
}

export interface Compiled {
  fn: JobFunction;
  /** The function itself, when `fn` is a wrapper that first waits for `ready`. */
  direct?: JobFunction;
  /** Settles once the module bindings are filled in (at once when there are none); rejects with why one could not be. */
  ready?: Promise<void>;
}

/** The only function of an object literal written in method shorthand (`({ m(x) { … } })`). */
function onlyMethod(holder: object): unknown {
  const values = Object.values(holder);
  if (values.length !== 1 || typeof values[0] !== 'function') throw new TypeError('definition source does not evaluate to a function');
  return values[0];
}

export function compileInScope(def: DefinitionSpec, importer: Importer): Compiled {
  const captures = def.captures ?? [];
  const values: unknown[] = [];
  const modules: Extract<CapturedName, { kind: 'module' }>[] = [];
  const lines = [`let ${DEFINITION_IMPORT} = __tsgather_scope.importer.import, require = __tsgather_scope.importer.require;`];
  const loads: string[] = [];
  for (const capture of captures) {
    if (typeof capture?.name !== 'string' || !CAPTURE_NAME.test(capture.name)) throw new TypeError(`a captured name must be an identifier, not ${JSON.stringify(capture?.name)}`);
    const { name } = capture;
    switch (capture.kind) {
      case 'value':
        values.push(decodeCaptured(capture));
        lines.push(`let ${name} = __tsgather_scope.values[${values.length - 1}];`);
        break;
      case 'function':
        lines.push(capture.method ? `let ${name} = __tsgather_scope.method({${capture.source}\n});` : `let ${name} = (${capture.source}\n);`);
        break;
      case 'module':
        modules.push(capture);
        lines.push(`let ${name};`);
        loads.push(`__tsgather_scope.load(${modules.length - 1}).then((value) => { ${name} = value; })`);
        break;
      default:
        throw new TypeError(`'${name}' was captured as an unknown kind '${(capture as { kind?: unknown }).kind}'`);
    }
  }
  const scope: ScopeValues = {
    importer,
    values,
    method: onlyMethod,
    load: async (index) => {
      const { specifier, path } = modules[index]!;
      let value = await importer.import(specifier);
      for (const step of path) value = (value as Record<string, unknown>)[step];
      return value;
    },
  };
  const ready = `Promise.all([${loads.join(', ')}])`;
  const prologue = `(function (__tsgather_scope) {\n${lines.join('\n')}\nreturn [`;
  // Its frames read define:<name>:<line> with the lines of the source as written (the scope's lines come before it).
  const where = { filename: `define:${encodeURIComponent(def.name)}`, lineOffset: -(prologue.split('\n').length - 1) };
  const compile = (main: string) => vm.runInThisContext(`${prologue}${main}, ${ready}];\n})`, where)(scope) as [unknown, Promise<unknown>];
  let compiled: [unknown, Promise<unknown>];
  try {
    compiled = compile(`(${def.source}\n)`);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    compiled = compile(`__tsgather_scope.method({${def.source}\n})`);
  }
  const [fn, loaded] = compiled;
  if (typeof fn !== 'function') throw new TypeError('definition source does not evaluate to a function');
  if (modules.length === 0) return { fn: fn as JobFunction };
  const ready$ = loaded.then(() => undefined);
  ready$.catch(() => {}); // a job reports it, if one runs
  return { fn: waitingFor(ready$, fn as JobFunction), direct: fn as JobFunction, ready: ready$ };
}

/** Runs `fn` once `ready` has settled (an async generator stays one). */
function waitingFor(ready: Promise<void>, fn: JobFunction): JobFunction {
  if (Object.prototype.toString.call(fn) === '[object AsyncGeneratorFunction]') {
    return async function* (...args: unknown[]) {
      await ready;
      yield* (fn as (...a: unknown[]) => AsyncGenerator<unknown>)(...args);
    } as JobFunction;
  }
  return async (...args: unknown[]) => {
    await ready;
    return fn(...args);
  };
}

function decodeCaptured(capture: Extract<CapturedName, { kind: 'value' }>): unknown {
  try {
    const bins = (capture.bins ?? []).map((b) => new Uint8Array(Buffer.from(b, 'base64')));
    return decodeParsed(JSON.parse(capture.text), capture.plain, bins);
  } catch (error) {
    throw new TypeError(`the captured value '${capture.name}' could not be decoded: ${(error as Error).message}`);
  }
}
