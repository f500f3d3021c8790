/**
 * docs/api.md is where options and events are written down, once: checked here against the types
 * they describe, so that an option or an event kind added to the code and not to the docs (or
 * the other way round) fails the tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(resolve(ROOT, path), 'utf8');

/** The property names of `interface name … {` in a source text (its own members, one level deep). */
function membersOf(source: string, name: string): string[] {
  const start = source.indexOf(`export interface ${name} `);
  assert.ok(start >= 0, `interface ${name} not found`);
  const body = source.slice(source.indexOf('{', start) + 1);
  const members: string[] = [];
  let depth = 0;
  for (const line of body.split('\n')) {
    if (depth === 0) {
      if (line.startsWith('}')) break;
      const member = /^ {2}(\w+)\??:/.exec(line);
      if (member) members.push(member[1]!);
    }
    depth += (line.match(/[{(]/g) ?? []).length - (line.match(/[})]/g) ?? []).length;
  }
  return members;
}

/** The first-column names of the table under `heading` in docs/api.md. */
function tableNames(markdown: string, heading: string): string[] {
  const section = markdown.slice(markdown.indexOf(heading));
  const table = section.slice(0, section.indexOf('\n#', heading.length));
  return [...table.matchAll(/^\| `(\w+)` \|/gm)].map((match) => match[1]!);
}

test('docs/api.md lists every spawn option, and only those', () => {
  const options = [...membersOf(read('caller/types.ts'), 'SpawnOptions'), ...membersOf(read('protocol/link-security.ts'), 'LinkSecurityOptions')];
  assert.ok(options.includes('maxQueued') && options.includes('keyFile'), 'the parser finds members');
  assert.deepEqual(tableNames(read('docs/api.md'), '### Options (`SpawnOptions`)').sort(), options.sort());
});

test('docs/api.md names every event kind', () => {
  const kinds = [...read('protocol/status.ts').matchAll(/\| \{ kind: '([a-z-]+)'/g)].map((match) => match[1]!);
  assert.ok(kinds.length >= 10, 'the parser finds kinds');
  const events = read('docs/api.md');
  assert.deepEqual(
    kinds.filter((kind) => !events.includes(`\`${kind}\``)),
    [],
  );
});
