/**
 * Test helper: a real Jupyter server on 127.0.0.1 with our kernelspec, in throwaway Jupyter
 * directories, driven from Node through @jupyterlab/services.
 */
import { KernelManager, ServerConnection } from '@jupyterlab/services';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { freePorts } from '../kernel/connection.js';
import { installKernelSpec } from '../kernel/install.js';
import { descendants, isAlive } from '../kernel/process-tree.js';

const STARTUP_TIMEOUT_MS = 60_000;

export interface JupyterEnvironment {
  root: string;
  /** Environment for jupyter commands: our kernelspec on JUPYTER_PATH, everything else inside root. */
  env: NodeJS.ProcessEnv;
  remove(): Promise<void>;
}

export async function jupyterEnvironment(): Promise<JupyterEnvironment> {
  const root = await mkdtemp(join(tmpdir(), 'tsgather-jupyter-'));
  const prefix = join(root, 'prefix');
  await installKernelSpec({ prefix });
  const dirs = { JUPYTER_RUNTIME_DIR: join(root, 'runtime'), JUPYTER_CONFIG_DIR: join(root, 'config'), JUPYTER_DATA_DIR: join(root, 'data') };
  await Promise.all(Object.values(dirs).map((dir) => mkdir(dir, { recursive: true })));
  const env = {
    ...process.env,
    ...dirs,
    JUPYTER_PATH: join(prefix, 'share', 'jupyter'),
    JUPYTER_PLATFORM_DIRS: '1',
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
  };
  return { root, env, remove: () => rm(root, { recursive: true, force: true }) };
}

export interface JupyterServer {
  baseUrl: string;
  /** The server's root directory (its notebooks' paths are relative to it), removed by stop(). */
  root: string;
  settings: ServerConnection.ISettings;
  kernels: KernelManager;
  process: ChildProcess;
  /** Everything the server printed, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/** A Jupyter application (the Jupyter server, the classic Notebook) on 127.0.0.1 in throwaway directories, listening. */
export interface JupyterApp {
  root: string;
  port: number;
  token: string;
  baseUrl: string;
  child: ChildProcess;
  log(): string;
  /** Stops it, and the kernels it started (they outlive an app that dies first); removes its directories. */
  stop(): Promise<void>;
}

/** Starts `program args(port, token, root)` in a fresh Jupyter environment; resolves once it says it listens. */
export async function startJupyterApp(what: string, program: string, args: (port: number, token: string, root: string) => string[]): Promise<JupyterApp> {
  const environment = await jupyterEnvironment();
  const [port] = await freePorts(1);
  const token = randomUUID();
  const child = spawn(program, args(port!, token, environment.root), { cwd: environment.root, env: environment.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${STARTUP_TIMEOUT_MS} ms:\n${log}`)), STARTUP_TIMEOUT_MS);
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
      reject(new Error(`${what} exited (${code}):\n${log}`));
    });
  });
  const stop = async () => {
    const started = descendants(child.pid); // kernels, which outlive an app that dies first
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
  return { root: environment.root, port: port!, token, baseUrl: `http://127.0.0.1:${port}/`, child, log: () => log, stop };
}

export async function startJupyterServer(): Promise<JupyterServer> {
  const app = await startJupyterApp('jupyter server', 'jupyter', (port, token, root) => [
    'server',
    '--ServerApp.ip=127.0.0.1',
    `--ServerApp.port=${port}`,
    '--ServerApp.port_retries=0',
    `--ServerApp.token=${token}`,
    '--ServerApp.open_browser=False',
    '--ServerApp.allow_root=True',
    `--ServerApp.root_dir=${root}`,
  ]);
  const { baseUrl, token } = app;
  let kernels: KernelManager | undefined;
  const stop = async () => {
    kernels?.dispose(); // its polling timers and websockets would keep the test process alive
    await app.stop();
  };
  try {
    const settings = ServerConnection.makeSettings({
      baseUrl,
      wsUrl: baseUrl.replace(/^http/, 'ws'),
      token,
      appendToken: true,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    });
    const status = await fetch(`${baseUrl}api/status`, { headers: { Authorization: `token ${token}` } });
    if (!status.ok) throw new Error(`jupyter server API answered ${status.status}`);
    kernels = new KernelManager({ serverSettings: settings });
    await kernels.ready;
    return { baseUrl, root: app.root, settings, kernels, process: app.child, log: app.log, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
