/**
 * Test helper: the classic Jupyter Notebook (Debian's python3-notebook, 6.x) on 127.0.0.1 with our
 * kernelspec, in throwaway Jupyter directories, for driving from a browser.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startJupyterApp } from './jupyter-server.js';

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
  const app = await startJupyterApp('the classic Notebook', '/usr/bin/python3', (port, token, root) => [
    '-m',
    'notebook',
    '--NotebookApp.ip=127.0.0.1',
    `--NotebookApp.port=${port}`,
    '--NotebookApp.port_retries=0',
    `--NotebookApp.token=${token}`,
    '--NotebookApp.open_browser=False',
    '--NotebookApp.allow_root=True',
    `--NotebookApp.notebook_dir=${root}`,
  ]);
  const { baseUrl, token, root } = app;
  return {
    baseUrl,
    token,
    root,
    notebookUrl: (name) => `${baseUrl}notebooks/${encodeURIComponent(name)}?token=${token}`,
    urlOf: (name) => `${baseUrl}notebooks/${encodeURIComponent(name)}?token=${token}`,
    async newNotebook(name) {
      const notebook = {
        cells: [],
        metadata: { kernelspec: { name: 'tsgather', display_name: 'TypeScript (tsgather)', language: 'typescript' } },
        nbformat: 4,
        nbformat_minor: 5,
      };
      await writeFile(join(root, name), JSON.stringify(notebook));
      return name;
    },
    log: app.log,
    stop: app.stop,
  };
}
