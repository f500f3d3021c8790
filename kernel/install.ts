/** Installing the kernelspec Jupyter uses to find and start this kernel. */
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { homedir, platform } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KERNEL_MAIN } from './launch.js';
import { YOUNG_GENERATION_FLAGS } from '../runtime/v8-flags.js';
import { withMallocTunables } from '../runtime/malloc-tunables.js';

export const KERNEL_NAME = 'tsgather';
export const DISPLAY_NAME = 'TypeScript (tsgather)';

export interface KernelSpecOptions {
  /** Into the user's Jupyter data dir (the default when no prefix is given). */
  user?: boolean;
  /** Into `<prefix>/share/jupyter/kernels/<name>`, as `jupyter kernelspec install --prefix` does. */
  prefix?: string;
  name?: string;
}

export interface KernelSpec {
  argv: string[];
  display_name: string;
  language: string;
  interrupt_mode: 'signal' | 'message';
  metadata: Record<string, unknown>;
  env: Record<string, string>;
}

export function kernelSpec(): KernelSpec {
  return {
    argv: [process.execPath, ...YOUNG_GENERATION_FLAGS, KERNEL_MAIN, '{connection_file}'],
    display_name: DISPLAY_NAME,
    language: 'typescript',
    // 'message', not 'signal': jupyter_client signals the kernel's whole process group, which
    // would also hit the scatter/gather controller and workers that cells started
    interrupt_mode: 'message',
    metadata: { debugger: false },
    // Jupyter sets these over the environment it starts the kernel with
    env: { GLIBC_TUNABLES: withMallocTunables({}).GLIBC_TUNABLES! },
  };
}

/** Where Jupyter looks for user data: JUPYTER_DATA_DIR, else the platform's default. */
export function userDataDir(): string {
  if (process.env.JUPYTER_DATA_DIR) return process.env.JUPYTER_DATA_DIR;
  if (platform() === 'darwin') return join(homedir(), 'Library', 'Jupyter');
  if (platform() === 'win32') return join(process.env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'jupyter');
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'jupyter');
}

export function kernelSpecDir(options: KernelSpecOptions = {}): string {
  const name = options.name ?? KERNEL_NAME;
  if (options.prefix) return join(options.prefix, 'share', 'jupyter', 'kernels', name);
  if (options.user === false) return join(platform() === 'win32' ? (process.env.PROGRAMDATA ?? 'C:\\ProgramData') : '/usr/local/share', 'jupyter', 'kernels', name);
  return join(userDataDir(), 'kernels', name);
}

/**
 * The kernel's logos, by the names Jupyter serves as kernelspec resources: the classic Notebook
 * shows logo-64x64.png, JupyterLab's launcher logo-64x64.png or logo-svg.svg. The PNGs are the SVG
 * rendered by headless Chromium (`--default-background-color=00000000 --window-size=N,N`).
 */
export const LOGO_FILES = ['logo-32x32.png', 'logo-64x64.png', 'logo-svg.svg'] as const;
const LOGO_DIR = fileURLToPath(new URL('../../kernel/logos/', import.meta.url));

/** Writes kernel.json and the logos; returns the kernelspec directory. */
export async function installKernelSpec(options: KernelSpecOptions = {}): Promise<string> {
  const dir = kernelSpecDir(options);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'kernel.json'), `${JSON.stringify(kernelSpec(), null, 2)}\n`);
  for (const logo of LOGO_FILES) await copyFile(join(LOGO_DIR, logo), join(dir, logo));
  return dir;
}

/** Removes the kernelspec directory; resolves false if there was none. */
export async function uninstallKernelSpec(options: KernelSpecOptions = {}): Promise<boolean> {
  const dir = kernelSpecDir(options);
  try {
    await rm(join(dir, 'kernel.json'));
  } catch {
    return false;
  }
  await rm(dir, { recursive: true, force: true });
  return true;
}
