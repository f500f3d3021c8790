/**
 * Completion (Tab) and inspection (Shift-Tab) from types, through a real Jupyter server and the
 * kernel it starts: literals and call results, the `tsgather` API without its internals, Node and
 * the standard library, variables of earlier cells, a package installed beside the notebook, and
 * the runtime's view where the types know nothing.
 */
import type { Kernel } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execute, outputsOf, streamText, startKernel, stopKernel } from './jupyter-kernel-helpers.js';
import type { JupyterServer } from './jupyter-server.js';

/** Internals of ScatterGather (TypeScript `private`): present at run time, never offered. */
const INTERNALS = ['ledger', 'jobs', 'requests', 'waiters', 'assertRunning', 'claim', 'claimValues', 'enqueue', 'feed', 'fromController', 'die'];

describe('completion and inspection through a Jupyter server', { timeout: 180_000 }, () => {
  let server: JupyterServer;
  let kernel: Kernel.IKernelConnection;

  const complete = async (code: string, cursor = [...code].length) => {
    const reply = await kernel.requestComplete({ code, cursor_pos: cursor });
    assert.ok(reply.content.status === 'ok');
    return reply.content;
  };
  const matches = async (code: string) => (await complete(code)).matches;
  const inspect = async (code: string, detail: 0 | 1 = 0, cursor = [...code].length) => {
    const reply = await kernel.requestInspect({ code, cursor_pos: cursor, detail_level: detail });
    assert.ok(reply.content.status === 'ok');
    return { found: reply.content.found, text: String(reply.content.data['text/plain'] ?? ''), markdown: String(reply.content.data['text/markdown'] ?? '') };
  };
  const run = async (code: string) => {
    const { reply, iopub } = await execute(kernel, code);
    assert.equal(reply.content.status, 'ok', JSON.stringify(outputsOf(iopub, 'error').map((m) => m.content)));
    return iopub;
  };

  before(async () => {
    ({ server, kernel } = await startKernel());
  });

  after(async () => {
    await execute(kernel, 'await sg?.close()').catch(() => undefined);
    await stopKernel(server, kernel);
  });

  test('members of literals and of call results', async () => {
    const array = await complete('[1, 2].fil');
    assert.deepEqual(array.matches, ['fill', 'filter']);
    assert.equal(array.cursor_start, 7);
    assert.equal(array.cursor_end, 10);
    assert.deepEqual(await matches('"abc".toUpp'), ['toUpperCase']);
    assert.deepEqual(await matches('new Date().toISOS'), ['toISOString']);
    assert.ok((await matches('Object.entries({ a: 1 }).map((pair) => pair[0].toLow')).includes('toLowerCase'));
    const types = (await complete('[1, 2].fil')).metadata._jupyter_types_experimental as Array<{ text: string; type: string }>;
    assert.deepEqual(
      types.map(({ text, type }) => [text, type]),
      [
        ['fill', 'function'],
        ['filter', 'function'],
      ],
    );
  });

  test('no keywords or globals inside a string or a comment', async () => {
    assert.deepEqual(await matches('const greeting = "ret'), []);
    assert.deepEqual(await matches('const greeting = `ret'), []);
    assert.deepEqual(await matches('// ret'), []);
    assert.deepEqual(await matches('/* ret'), []);
    // code inside a template literal's ${} is code again
    assert.ok((await matches('const s = `${Math.ma')).includes('max'));
    // a keyword where code goes
    assert.ok((await matches('ret')).includes('return'));
  });

  test('sg. offers the public API of ScatterGather, with the notebook additions, and none of its internals', async () => {
    await run('const sg = await spawnScatterGather([], { workers: 1 });');
    const offered = await matches('sg.');
    for (const name of ['map', 'mapResults', 'submit', 'addJob', 'define', 'status', 'close', 'results', 'on', 'plotDurations']) {
      assert.ok(offered.includes(name), `sg. offers ${name}: ${offered.join(' ')}`);
    }
    const runtimeNames = await run(
      'const names = new Set<string>(); for (let o = sg; o; o = Object.getPrototypeOf(o)) Object.getOwnPropertyNames(o).forEach((n) => names.add(n)); [...names].join(" ")',
    );
    const [result] = outputsOf(runtimeNames, 'execute_result');
    const present = String((result.content as { data: Record<string, string> }).data['text/plain']);
    for (const name of INTERNALS) {
      assert.ok(present.includes(name), `${name} exists at run time`);
      assert.ok(!offered.includes(name), `sg. hides ${name}`);
    }
    assert.ok(
      offered.every((name) => !name.startsWith('_')),
      offered.join(' '),
    );
  });

  test('Shift-Tab in a call shows the signature and its documentation', async () => {
    const max = await inspect('Math.max(');
    assert.ok(max.found);
    assert.match(max.text, /max\(\.\.\.values: number\[\]\): number/);
    assert.match(max.text, /Returns the larger of a set of supplied numeric expressions/);
    assert.match(max.markdown, /```typescript\nmax\(/);

    const map = await inspect('sg.map(');
    assert.match(map.text, /map\(name: string, items: JobItem\[\] \| ItemSource, options\?: JobOptions\): Promise<unknown\[\]>/);
    assert.match(map.text, /one job per item/);

    const spawn = await inspect('spawnScatterGather(');
    assert.match(spawn.text, /spawnScatterGather\(urls\?: string\[\], options\?: SpawnOptions\): Promise<ScatterGather>/);
    assert.match(spawn.text, /Starts a controller child process/);

    const plot = await inspect('sg.plotDurations');
    assert.match(plot.text, /plotDurations\(results: readonly TimedResult\[\]\): DurationsChart/);
  });

  test('a function of an earlier cell shows its TypeScript signature and documentation; detail 1 its source', async () => {
    await run('/** Celsius to Fahrenheit. */\nfunction fahrenheit(celsius: number, digits: number = 1): string {\n  return (celsius * 1.8 + 32).toFixed(digits);\n}');
    const brief = await inspect('fahrenheit');
    assert.match(brief.text, /^function fahrenheit\(celsius: number, digits\?: number\): string\n\nCelsius to Fahrenheit\./);
    const call = await inspect('fahrenheit(21, ');
    assert.match(call.text, /fahrenheit\(celsius: number, digits\?: number\): string/);
    const full = await inspect('fahrenheit', 1);
    assert.match(full.text, /Source:\nfunction fahrenheit\(celsius: number, digits: number = 1\): string \{/);
  });

  test('variables of earlier cells, and the newest type of a re-declared one', async () => {
    await run("const readings = [{ celsius: 21.5, station: 'north' }];\nlet unit = 'C';");
    assert.deepEqual(await matches('readings[0].ce'), ['celsius']);
    assert.deepEqual(await matches('readings.at(-1)?.sta'), ['station']);
    assert.deepEqual(await matches('unit.toLowerC'), ['toLowerCase']);
    await run('let unit = 451;');
    assert.deepEqual(await matches('unit.toFi'), ['toFixed']);
    assert.deepEqual(await matches('unit.toLowerC'), []);
    // the cell being edited re-declares it too: its own declaration wins
    assert.deepEqual(await matches('const unit = [1];\nunit.fla'), ['flat', 'flatMap']);
    const inspected = await inspect('readings', 0, 2);
    assert.match(inspected.text, /const readings: \{\n\s+celsius: number;\n\s+station: string;\n\s*\}\[\]/);
    assert.match(inspected.text, /Value:\nreadings: Array\n\[ \{ celsius: 21\.5, station: 'north' \} \]/);
  });

  test('Node built-ins and an installed package, with its types and documentation', async () => {
    const dir = streamText(await run('console.log(process.cwd())'), 'stdout').trim();
    // asked for before it is installed: not found, and not remembered as missing once a cell has run
    assert.deepEqual(await matches("import { highTide } from 'tide-tables'; highTide('Brest').hei"), []);
    const pkg = join(dir, 'node_modules', 'tide-tables');
    await mkdir(pkg, { recursive: true });
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'tide-tables', version: '1.0.0', type: 'module', exports: { '.': { types: './index.d.ts', default: './index.js' } } }));
    await writeFile(join(pkg, 'index.js'), 'export function highTide(port) { return { port, at: new Date(0), heightMetres: 4.2 }; }\n');
    await writeFile(
      join(pkg, 'index.d.ts'),
      'export interface Tide { port: string; at: Date; heightMetres: number }\n/** The next high tide at a port. */\nexport function highTide(port: string): Tide;\n',
    );
    await run("import { highTide } from 'tide-tables';\nimport { readFileSync } from 'node:fs';");
    assert.deepEqual(await matches("highTide('Brest').hei"), ['heightMetres']);
    assert.match((await inspect('highTide(')).text, /highTide\(port: string\): Tide\n\nThe next high tide at a port\./);
    assert.ok((await matches('readFileSync(')).length > 0);
    assert.deepEqual(await matches('process.memoryUs'), ['memoryUsage']);
    assert.match((await inspect('readFileSync')).text, /function readFileSync\(path: PathOrFileDescriptor/);
    // a module specifier inside a string: module names, not keywords
    const modules = await complete("import { join } from 'node:pa");
    assert.ok(modules.matches.includes('node:path'), modules.matches.join(' '));
  });

  test('the runtime fills in members the types do not know', async () => {
    await run('const loose: any = { zebra: 1, zap: 2 };');
    assert.deepEqual(await matches('loose.z'), ['zap', 'zebra']);
    const inspected = await inspect('loose', 0, 2);
    assert.match(inspected.text, /const loose: any[\s\S]*Value:\nloose: Object\n\{ zebra: 1, zap: 2 \}/);
  });

  test('completion latency (reported, not asserted)', async (t) => {
    const timings: number[] = [];
    for (let i = 0; i < 20; i++) {
      const code = `readings[0].station.toUpperCase().padSt${'a'.repeat(i % 2)}`;
      const start = performance.now();
      await complete(code);
      timings.push(performance.now() - start);
    }
    timings.sort((a, b) => a - b);
    t.diagnostic(`complete_request round trip through the Jupyter server: median ${timings[10].toFixed(1)} ms, max ${timings[19].toFixed(1)} ms`);
  });
});
