/**
 * A failed job's stack as the user wants to read it: the frames of their own code. The worker's
 * job runner (tsgather's compiled rooms under dist/) and Node's internals are cut, and a defined
 * function's frames, which the worker names `define:<name>:<line>:<column>`, say which function
 * ran when V8 could not (an arrow function shows as `Object.eval [as fn]` or `Object.fn`).
 */
const OWN_FRAME = /[\\/]dist[\\/](?:caller|cli|controller|embedded|kernel|protocol|runtime|server)[\\/][^\\/()]+\.js:\d+:\d+\)?$|\(?node:internal[\\/]/;
const CALLED_AS_FN = /^(\s+at (?:async )?)Object\.(.+?)( \[as fn\])? \((define:([^:()]+):\d+:\d+)\)$/;

export function userStack(stack: string): string {
  const lines = stack.split('\n');
  const firstFrame = lines.findIndex((line) => /^\s+at /.test(line));
  if (firstFrame < 0) return stack;
  const frames = lines.slice(firstFrame).filter((line) => !OWN_FRAME.test(line));
  return [...lines.slice(0, firstFrame), ...frames.map(nameDefinitionFrame)].join('\n');
}

function nameDefinitionFrame(line: string): string {
  const match = CALLED_AS_FN.exec(line);
  if (!match) return line;
  const [, at, name, asFn, location, defined] = match as unknown as [string, string, string, string | undefined, string, string];
  // An arrow is called as the definition's `fn` property: `Object.eval [as fn]` compiled by eval, `Object.fn` by vm.
  const anonymous = name === 'eval' || name === '<anonymous>' || (name === 'fn' && asFn === undefined);
  return `${at}${anonymous ? safeDecode(defined) : name} (${location})`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
