/**
 * Test helper: the classic Jupyter Notebook (Debian's python3-notebook, 6.x) on 127.0.0.1 with our
 * kernelspec, in throwaway Jupyter directories, for driving from a browser.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts } from '../kernel/connection.js';
import { descendants, isAlive } from '../kernel/process-tree.js';
import { jupyterEnvironment } from './jupyter-server.js';

const STARTUP_TIMEOUT_MS = 60_000;

export interface ClassicNotebook {
  baseUrl: string;
  token: string;
  /** The directory the Notebook serves; notebooks written here open at `notebookUrl(name)`. */
  root: string;
  notebookUrl(name: string): string;
  /** The same as notebookUrl. */
  urlOf(name: string): string;
  /** Writes an empty notebook for our kernel; returns its name. */
  newNotebook(name: string): Promise<string>;
  log(): string;
  stop(): Promise<void>;
}

export async function startClassicNotebook(): Promise<ClassicNotebook> {
  const environment = await jupyterEnvironment();
  const [port] = await freePorts(1);
  const token = randomUUID();
  const child = spawn(
    '/usr/bin/python3',
    [
      '-m',
      'notebook',
      '--NotebookApp.ip=127.0.0.1',
      `--NotebookApp.port=${port}`,
      '--NotebookApp.port_retries=0',
      `--NotebookApp.token=${token}`,
      '--NotebookApp.open_browser=False',
      '--NotebookApp.allow_root=True',
      `--NotebookApp.notebook_dir=${environment.root}`,
    ],
    { cwd: environment.root, env: environment.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const baseUrl = `http://127.0.0.1:${port}/`;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the classic Notebook did not start within ${STARTUP_TIMEOUT_MS} ms:\n${log}`)), STARTUP_TIMEOUT_MS);
    const onOutput = (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes(`127.0.0.1:${port}/`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the classic Notebook exited (${code}):\n${log}`));
    });
  });
  const stop = async () => {
    const started = descendants(child.pid); // kernels, which outlive a server that dies first
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    child.kill('SIGKILL');
    for (const pid of started.filter(isAlive)) process.kill(pid, 'SIGKILL');
    await exited;
    await environment.remove();
  };
  try {
    await listening;
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    baseUrl,
    token,
    root: environment.root,
    notebookUrl: (name) => `${baseUrl}notebooks/${encodeURIComponent(name)}?token=${token}`,
    urlOf: (name) => `${baseUrl}notebooks/${encodeURIComponent(name)}?token=${token}`,
    async newNotebook(name) {
      const notebook = {
        cells: [],
        metadata: { kernelspec: { name: 'tsgather', display_name: 'TypeScript (tsgather)', language: 'typescript' } },
        nbformat: 4,
        nbformat_minor: 5,
      };
      await writeFile(join(environment.root, name), JSON.stringify(notebook));
      return name;
    },
    log: () => log,
    stop,
  };
}
