/**
 * In the cell worker: evaluates scripts through the thread's own inspector session, with V8's
 * REPL mode (top-level await, completion value, re-declarable let/const), and hands the resulting
 * JS value back by reference rather than as a protocol preview.
 */
import type { Runtime } from 'node:inspector';
import type { InspectorSession } from './inspector-session.js';

export type Evaluation =
  | { kind: 'value'; value: unknown }
  | { kind: 'thrown'; value: unknown }
  /** Runtime.terminateExecution stopped it (an interrupt). */
  | { kind: 'terminated' };

interface EvaluateResult {
  result: Runtime.RemoteObject;
  exceptionDetails?: Runtime.ExceptionDetails;
}

const HANDOFF = Symbol.for('tsgather.handoff');
const GROUP = 'tsgather';

export class Evaluator {
  constructor(private readonly inspector: InspectorSession) {}

  /** Runs a cell. */
  run(script: string): Promise<Evaluation> {
    return this.evaluate({ expression: script, replMode: true, awaitPromise: true });
  }

  /** Evaluates an expression only if V8 can prove it has no side effects (for completion and inspection). */
  peek(expression: string): Promise<Evaluation> {
    return this.evaluate({ expression, throwOnSideEffect: true, timeout: 500, silent: true });
  }

  async globalLexicalNames(): Promise<string[]> {
    const { names } = await this.inspector.post<{ names: string[] }>('Runtime.globalLexicalScopeNames');
    return [...new Set(names)];
  }

  private async evaluate(params: object): Promise<Evaluation> {
    let response: EvaluateResult;
    try {
      response = await this.inspector.post<EvaluateResult>('Runtime.evaluate', { ...params, objectGroup: GROUP });
    } catch (error) {
      if (/Execution was terminated/.test(String(error))) return { kind: 'terminated' };
      throw error;
    }
    try {
      if (response.exceptionDetails) {
        const exception = response.exceptionDetails.exception;
        return { kind: 'thrown', value: exception ? await this.materialize(exception) : new Error(response.exceptionDetails.text) };
      }
      return { kind: 'value', value: await this.materialize(response.result) };
    } finally {
      void this.inspector.post('Runtime.releaseObjectGroup', { objectGroup: GROUP });
    }
  }

  private async materialize(remote: Runtime.RemoteObject): Promise<unknown> {
    if (!remote.objectId) return primitive(remote);
    await this.inspector.post('Runtime.callFunctionOn', {
      objectId: remote.objectId,
      functionDeclaration: `function () { 'use strict'; globalThis[Symbol.for('tsgather.handoff')] = this; }`,
      silent: true,
    });
    const holder = globalThis as Record<symbol, unknown>;
    const value = holder[HANDOFF];
    delete holder[HANDOFF];
    return value;
  }
}

function primitive(remote: Runtime.RemoteObject): unknown {
  if (remote.type === 'undefined') return undefined;
  const unserializable = remote.unserializableValue;
  if (unserializable === undefined) return remote.value;
  if (remote.type === 'bigint') return BigInt(unserializable.replace(/n$/, ''));
  return unserializable === '-0' ? -0 : Number(unserializable);
}
