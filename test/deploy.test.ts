/**
 * The deployment files, validated where they cannot be run here: the systemd unit by
 * `systemd-analyze verify`, the Kubernetes manifest and the Containerfile by parsing (the image is
 * also built and run with podman: test/containers.test.ts). Every `tsgather server` flag they use
 * must be one the real CLI accepts, and the manifest must agree with the image.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { runCli, runProgram } from './cli-helpers.js';
import { YOUNG_GENERATION_FLAGS } from '../runtime/v8-flags.js';
import { withMallocTunables } from '../runtime/malloc-tunables.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const deploy = (file: string) => join(repo, 'deploy', file);

let serverFlags: Set<string>;
before(async () => {
  const help = await runCli(['server', '--help']);
  serverFlags = new Set([...help.stdout.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]));
});

function assertServerFlags(args: string[], where: string): void {
  for (const flag of args.filter((arg) => arg.startsWith('--'))) assert.ok(serverFlags.has(flag), `${where}: '${flag}' is not an option of tsgather server`);
}

/** `[Section]` → key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) {
      sections.set(section[1]!, (current = new Map()));
      continue;
    }
    const pair = /^(\w+)=(.*)$/.exec(line);
    assert.ok(pair && current, `not a key=value line inside a section: ${line}`);
    current.set(pair[1]!, [...(current.get(pair[1]!) ?? []), pair[2]!]);
  }
  return sections;
}

describe('systemd unit', () => {
  const unit = deploy('tsgather-server.service');

  test('systemd-analyze verify accepts it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsgather-unit-'));
    try {
      await copyFile(unit, join(dir, 'tsgather-server.service'));
      const verified = await runProgram('systemd-analyze', ['verify', join(dir, 'tsgather-server.service')]).catch((error: Error) => {
        throw new Error(`systemd-analyze could not be run (test/setup.sh installs the Debian systemd package): ${error.message}`);
      });
      assert.equal(verified.code, 0, verified.stderr);
      assert.equal(verified.stderr.trim(), '', 'no warnings');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('it runs `tsgather server` with keys, stops it with SIGTERM to the server first, and is enabled for boot', () => {
    const sections = parseUnit(readFileSync(unit, 'utf8'));
    assert.deepEqual([...sections.keys()], ['Unit', 'Service', 'Install']);
    const service = sections.get('Service')!;
    const exec = service.get('ExecStart')![0]!.split(/\s+/);
    assert.deepEqual(exec.slice(0, 3), ['/usr/bin/env', 'tsgather', 'server']);
    assertServerFlags(exec.slice(3), 'ExecStart');
    assert.ok(exec.includes('--bind') && exec.includes('--key-file') && exec.includes('--authorized-keys'));
    assert.match(exec[exec.indexOf('--key-file') + 1]!, /^\$\{CREDENTIALS_DIRECTORY\}\/server\.key$/);
    assert.match(service.get('LoadCredential')![0]!, /^server\.key:\/etc\/tsgather\/server\.key$/);
    assert.ok(service.get('Environment')!.includes(`GLIBC_TUNABLES=${withMallocTunables({}).GLIBC_TUNABLES}`), 'the server relays large frames: it gets the malloc tunables');
    assert.deepEqual(service.get('KillMode'), ['mixed']);
    assert.deepEqual(service.get('Restart'), ['on-failure']);
    assert.equal(service.has('MemoryDenyWriteExecute'), false, 'V8 needs writable executable memory for its JIT');
    assert.deepEqual(sections.get('Install')!.get('WantedBy'), ['multi-user.target']);
  });
});

describe('Kubernetes Deployment', () => {
  test('servers dial in to a controller with keys from a Secret, sized to their CPU', () => {
    const documents = parseAllDocuments(readFileSync(deploy('k8s/server-deployment.yaml'), 'utf8'));
    for (const document of documents) assert.deepEqual(document.errors, [], 'YAML parses without errors');
    const manifests = documents.map((document) => document.toJS());
    const deployment = manifests.find((m) => m.kind === 'Deployment');
    assert.ok(deployment, 'a Deployment');
    assert.equal(deployment.apiVersion, 'apps/v1');
    const labels = deployment.spec.template.metadata.labels;
    for (const [key, value] of Object.entries(deployment.spec.selector.matchLabels)) assert.equal(labels[key], value, 'the selector matches the pod template');
    assert.ok(deployment.spec.replicas >= 1);

    const pod = deployment.spec.template.spec;
    const server = pod.containers.find((c: { name: string }) => c.name === 'server');
    const args: string[] = server.args;
    assertServerFlags(args, 'container args');
    assert.match(args[args.indexOf('--connect') + 1]!, /^tcp:\/\/[\w.-]+:\d+$/, '--connect names the controller address');
    assert.equal(server.image, pod.initContainers[0].image, 'the key installer uses the server image');
    assert.equal(args[args.indexOf('--workers') + 1], String(server.resources.limits.cpu), 'one worker per CPU of the limit');
    for (const kind of ['requests', 'limits']) assert.ok(server.resources[kind].cpu && server.resources[kind].memory, `resources.${kind} set`);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.runAsUser, imageUid(), "the image's user");
    assert.equal(pod.securityContext.runAsGroup, imageUid());
    // Deleted or scaled down, a pod gets SIGTERM and drains: running jobs finish, queued ones go back to the controller.
    const drain = Number(args[args.indexOf('--drain-seconds') + 1]);
    assert.ok(drain > 0 && deployment.spec.template.spec.terminationGracePeriodSeconds >= drain + 5, 'the grace period covers the drain');

    // --key-file and --controller-key point into the keys volume, filled from the Secret.
    const keysMount = server.volumeMounts.find((m: { name: string }) => m.name === 'keys');
    assert.equal(keysMount.mountPath, '/keys', "where the image's default command looks for them");
    assert.equal(keysMount.readOnly, true);
    assert.ok(args[args.indexOf('--key-file') + 1]!.startsWith(`${keysMount.mountPath}/`));
    assert.ok(args[args.indexOf('--controller-key') + 1]!.startsWith(`${keysMount.mountPath}/`));
    const secret = pod.volumes.find((v: { name: string; secret?: unknown }) => v.secret);
    assert.equal(secret.secret.secretName, 'tsgather-keys');
    assert.match(pod.initContainers[0].command.join(' '), /install -m 0600 \/secret\/server\.key \/keys\/server\.key/);
    assert.ok(
      server.volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/tmp'),
      'a writable /tmp for the worker sockets',
    );
  });
});

/** Containerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Array<{ op: string; args: string }> {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [, op, args] = /^([A-Z]+)\s+(.*)$/.exec(line) ?? assert.fail(`not an instruction: ${line}`);
      return { op: op!, args: args! };
    });
}

const containerfile = () => instructions(readFileSync(deploy('Containerfile'), 'utf8'));

/** The uid of the image's user, as the Containerfile makes it. */
function imageUid(): number {
  const useradd = containerfile().find((s) => s.op === 'RUN' && /useradd .*\bnode$/.test(s.args));
  return Number(/--uid (\d+)/.exec(useradd?.args ?? '')?.[1]);
}

describe('Containerfile', () => {
  test('Node from NODE_IMAGE on BASE_IMAGE (build arguments); it compiles every folder tsc builds, and the final image has runtime dependencies only and starts tsgather server as user node', () => {
    const steps = containerfile();
    const known = new Set(['FROM', 'WORKDIR', 'COPY', 'RUN', 'ENV', 'USER', 'EXPOSE', 'ENTRYPOINT', 'CMD', 'ARG', 'LABEL']);
    for (const step of steps) assert.ok(known.has(step.op), `unknown instruction ${step.op}`);

    // Build arguments with defaults that work anywhere a registry is reachable; NODE_IMAGE's Node is what package.json needs.
    const args = new Map(steps.filter((s) => s.op === 'ARG').map((s) => s.args.split('=') as [string, string]));
    assert.equal(args.get('BASE_IMAGE'), 'docker.io/library/debian:bookworm-slim');
    const nodeMajor = Number(/:(\d+)-/.exec(args.get('NODE_IMAGE') ?? '')?.[1]);
    assert.ok(nodeMajor >= Number(/>=(\d+)/.exec(JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).engines.node)![1]), 'Node of package.json engines');
    assert.deepEqual(
      steps.filter((s) => s.op === 'FROM').map((s) => s.args),
      ['${NODE_IMAGE} AS node', '${BASE_IMAGE} AS build', '${BASE_IMAGE}'],
    );
    const stage = (n: number) => {
      const froms = steps.flatMap((s, i) => (s.op === 'FROM' ? [i] : []));
      return steps.slice(froms[n]! + 1, froms[n + 1]);
    };
    const [build, final] = [stage(1), stage(2)];

    // Every folder tsc compiles is copied in before the build step, and exists in the repository.
    const { include } = JSON.parse(readFileSync(join(repo, 'tsconfig.json'), 'utf8')) as { include: string[] };
    const copied = build.filter((s) => s.op === 'COPY' && !s.args.startsWith('--from')).flatMap((s) => s.args.split(/\s+/).slice(0, -1));
    for (const folder of include) assert.ok(copied.includes(folder), `the build stage copies ${folder}/ (tsconfig.json compiles it)`);
    for (const source of copied) assert.ok(existsSync(join(repo, source)), `COPY ${source}: not in the repository`);
    const compile = build.findIndex((s) => s.op === 'RUN' && /npx tsc -p tsconfig\.json/.test(s.args));
    assert.ok(compile > 0 && build.slice(compile).every((s) => s.op !== 'COPY'), 'compiles after copying the sources');
    assert.match(build[compile]!.args, /npm prune --omit=dev/, 'runtime dependencies only for the final image');

    for (const path of ['/usr/local/bin/node', '/usr/local/lib/node_modules/npm']) assert.ok(build.some((s) => s.op === 'COPY' && s.args === `--from=node ${path} ${path}`));
    assert.deepEqual(
      final.filter((s) => s.op === 'COPY').map((s) => s.args),
      ['--from=node /usr/local/bin/node /usr/local/bin/node', 'package.json ./', '--from=build /app/node_modules ./node_modules', '--from=build /app/dist ./dist'],
      'the final image gets node, the compiled code and its runtime dependencies, and no npm',
    );
    assert.equal(final.find((s) => s.op === 'USER')?.args, 'node', 'not root');
    assert.equal(imageUid(), 1000, 'uid 1000, as in the official Node images');
    assert.deepEqual(JSON.parse(final.find((s) => s.op === 'ENTRYPOINT')!.args), ['node', ...YOUNG_GENERATION_FLAGS, 'dist/cli/main.js', 'server']);
    assert.ok(
      final.some((s) => s.op === 'ENV' && s.args === `GLIBC_TUNABLES=${withMallocTunables({}).GLIBC_TUNABLES}`),
      'the server relays large frames: it gets the malloc tunables',
    );
    const cmd = JSON.parse(final.find((s) => s.op === 'CMD')!.args) as string[];
    assertServerFlags(cmd, 'CMD');
    assert.equal(cmd[cmd.indexOf('--key-file') + 1], '/keys/server.key', 'by default, keys mounted at /keys');
  });
});
