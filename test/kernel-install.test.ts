/** Installing the kernelspec where Jupyter finds it, and removing it again. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { installKernelSpec, kernelSpecDir, LOGO_FILES, uninstallKernelSpec } from '../kernel/install.js';
import { KERNEL_MAIN } from '../kernel/launch.js';
import { YOUNG_GENERATION_FLAGS } from '../runtime/v8-flags.js';
import { withMallocTunables } from '../runtime/malloc-tunables.js';

test('a prefix install is what `jupyter kernelspec list` finds, and uninstall removes it', async () => {
  const prefix = await mkdtemp(join(tmpdir(), 'tsgather-spec-'));
  try {
    const dir = await installKernelSpec({ prefix });
    assert.equal(dir, join(prefix, 'share', 'jupyter', 'kernels', 'tsgather'));
    const spec = JSON.parse(await readFile(join(dir, 'kernel.json'), 'utf8'));
    assert.deepEqual(spec.argv, [process.execPath, ...YOUNG_GENERATION_FLAGS, KERNEL_MAIN, '{connection_file}']);
    assert.equal(spec.display_name, 'TypeScript (tsgather)');
    assert.deepEqual(spec.env, { GLIBC_TUNABLES: withMallocTunables({}).GLIBC_TUNABLES });
    assert.equal(spec.language, 'typescript');
    assert.deepEqual(readdirSync(dir).sort(), ['kernel.json', ...LOGO_FILES].sort());

    const env = { ...process.env, JUPYTER_PATH: join(prefix, 'share', 'jupyter'), JUPYTER_DATA_DIR: join(prefix, 'data'), PYDEVD_DISABLE_FILE_VALIDATION: '1' };
    const { stdout } = await promisify(execFile)('jupyter', ['kernelspec', 'list', '--json'], { env });
    const listed = JSON.parse(stdout) as { kernelspecs: Record<string, { resource_dir: string; spec: { language: string } }> };
    assert.equal(listed.kernelspecs.tsgather?.resource_dir, dir);
    assert.equal(listed.kernelspecs.tsgather?.spec.language, 'typescript');

    assert.equal(await uninstallKernelSpec({ prefix }), true);
    assert.equal(existsSync(dir), false);
    assert.equal(await uninstallKernelSpec({ prefix }), false);
  } finally {
    await rm(prefix, { recursive: true, force: true });
  }
});

test('a user install goes to JUPYTER_DATA_DIR/kernels/<name>', () => {
  const saved = process.env.JUPYTER_DATA_DIR;
  process.env.JUPYTER_DATA_DIR = '/somewhere/jupyter';
  try {
    assert.equal(kernelSpecDir({ user: true, name: 'other' }), '/somewhere/jupyter/kernels/other');
  } finally {
    if (saved === undefined) delete process.env.JUPYTER_DATA_DIR;
    else process.env.JUPYTER_DATA_DIR = saved;
  }
});
