/**
 * In the cell worker: a ScatterGather as cells use it. Its waits (waitForResult, results, map,
 * mapResults, submit, addJobAsync) started by a cell carry the cell's abort signal, so that
 * interrupting the cell withdraws them: results not yet taken stay for a later cell's poll,
 * waitForResult or results, and a map stops feeding its list. And what define() ships is
 * remembered, to show a worker's stack frames as lines of the cell that wrote the function.
 */
import type { JobItem, JobOptions, ScatterGather, WaitOptions } from '../caller/index.js';
import { currentRun } from './cell-run.js';
import { rememberDefinition } from './cell-sources.js';

type Options = { signal?: AbortSignal } | undefined;

/** The options with the running cell's signal added (and the caller's own signal kept). */
function withCellSignal<O extends Options>(options: O): O {
  const run = currentRun();
  if (!run || (run.settled && !run.cancelled)) return options;
  const signal = options?.signal ? AbortSignal.any([options.signal, run.signal]) : run.signal;
  return { ...options, signal } as O;
}

export function forCells(sg: ScatterGather): ScatterGather {
  const waitForResult = sg.waitForResult.bind(sg);
  const results = sg.results.bind(sg);
  const map = sg.map.bind(sg);
  const mapResults = sg.mapResults.bind(sg);
  const submit = sg.submit.bind(sg);
  const addJobAsync = sg.addJobAsync.bind(sg) as (name: string, items: JobItem[], options?: JobOptions) => Promise<number[]>;
  const define = sg.define.bind(sg);
  const methods = {
    waitForResult: (options?: WaitOptions) => waitForResult(withCellSignal(options)),
    results: (options?: { signal?: AbortSignal }) => results(withCellSignal(options)),
    map: (name: string, items: JobItem[], options?: JobOptions) => map(name, items, withCellSignal(options)),
    mapResults: (name: string, items: JobItem[], options?: JobOptions) => mapResults(name, items, withCellSignal(options)),
    submit: (name: string, args?: unknown[], kwargs?: Record<string, unknown>, options?: JobOptions) => submit(name, args, kwargs, withCellSignal(options)),
    addJobAsync: (nameOrItems: string | JobItem[], items?: JobItem[], options?: JobOptions) =>
      // addJobAsync(items) has no options: it is addJobAsync(defaultFunction, items) when there is one
      typeof nameOrItems === 'string' || sg.defaultFunction === undefined
        ? addJobAsync(nameOrItems as string, items as JobItem[], withCellSignal(options))
        : addJobAsync(sg.defaultFunction, nameOrItems, withCellSignal(undefined)),
    define: async (name: string, fn: ((...args: never[]) => unknown) | string) => {
      const version = await define(name, fn);
      if (typeof fn === 'function' || typeof fn === 'string') rememberDefinition(name, String(fn));
      return version;
    },
  };
  for (const [name, value] of Object.entries(methods)) {
    Object.defineProperty(sg, name, { value, writable: true, configurable: true, enumerable: false });
  }
  return sg;
}
