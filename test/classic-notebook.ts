/**
 * Test helper: the classic Jupyter Notebook (notebook 6, `jupyter notebook`) served for real on
 * 127.0.0.1 with our kernelspec, in throwaway Jupyter directories (see jupyter-server.ts).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { freePorts } from '../kernel/connection.js';
import { descendants, isAlive } from '../kernel/process-tree.js';
import { jupyterEnvironment } from './jupyter-server.js';

const STARTUP_TIMEOUT_MS = 60_000;

export interface ClassicNotebook {
  /** Where notebooks are served from: put .ipynb files here. */
  root: string;
  /** The page of a notebook in `root`, with the token. */
  urlOf(notebook: string): string;
  log(): string;
  stop(): Promise<void>;
}

export async function startClassicNotebook(): Promise<ClassicNotebook> {
  const environment = await jupyterEnvironment();
  const [port] = await freePorts(1);
  const token = randomUUID();
  const child = spawn(
    'jupyter',
    [
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
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`jupyter notebook did not start within ${STARTUP_TIMEOUT_MS} ms:\n${log}`)), STARTUP_TIMEOUT_MS);
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
      reject(new Error(`jupyter notebook exited (${code}):\n${log}`));
    });
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
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
    root: environment.root,
    urlOf: (notebook) => `http://127.0.0.1:${port}/notebooks/${encodeURIComponent(notebook)}?token=${token}`,
    log: () => log,
    stop,
  };
}
