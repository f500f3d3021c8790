/**
 * The rooms speak only through the contract: every import across rooms is checked against the
 * rooms each may use. The caller, the controller and the server share protocol/ (and runtime/'s
 * process helpers) and nothing of each other's; the kernel uses the public API; embedded/ is the
 * one place the controller and a server meet; launch/ (servers started by a cluster manager) serves
 * the caller and the command line; the command line composes them all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** What each room may import from other rooms: a room, or one module of it (`room/file`). */
const MAY_USE: Record<string, readonly string[]> = {
  runtime: [],
  protocol: ['runtime'],
  caller: ['protocol', 'runtime', 'launch'],
  controller: ['protocol', 'runtime'],
  server: ['protocol', 'runtime'],
  launch: ['protocol', 'runtime'],
  embedded: ['protocol', 'runtime', 'controller', 'server'],
  kernel: ['protocol', 'runtime', 'caller/index'],
  cli: ['protocol', 'runtime', 'caller/index', 'server', 'kernel', 'launch'],
};

/** Every relative import of a source file, static or dynamic, as `room/module`. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)\.js'/g)) {
    const target = relative(ROOT, resolve(file, '..', match[1]!));
    found.push(target);
  }
  return found;
}

function sources(room: string): string[] {
  return readdirSync(join(ROOT, room), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => join(ROOT, room, name));
}

test('no room imports another room except through what it may use', () => {
  const crossings: string[] = [];
  for (const [room, allowed] of Object.entries(MAY_USE)) {
    for (const file of sources(room)) {
      for (const target of importsOf(file)) {
        const targetRoom = target.split('/')[0]!;
        if (targetRoom === room) continue;
        if (allowed.includes(targetRoom) || allowed.includes(target)) continue;
        crossings.push(`${relative(ROOT, file)} → ${target}`);
      }
    }
  }
  assert.deepEqual(crossings, []);
});

test('the check sees imports: the controller does use protocol, and the kernel the public API', () => {
  const controllerImports = sources('controller').flatMap(importsOf);
  assert.ok(controllerImports.some((target) => target.startsWith('protocol/')));
  assert.ok(sources('kernel').flatMap(importsOf).includes('caller/index'));
  assert.ok(importsOf(join(ROOT, 'embedded', 'controller-main.ts')).includes('controller/controller-process'), 'dynamic imports count');
});
