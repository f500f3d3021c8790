/** What the kernel says about itself in kernel_info_reply. */
import type { KernelMessage } from '@jupyterlab/services';
import { createRequire } from 'node:module';
import { PROTOCOL_VERSION } from './wire.js';

const packageJson = createRequire(import.meta.url)('../../package.json') as { version: string };

export const LANGUAGE_INFO = {
  name: 'typescript',
  version: process.versions.node,
  mimetype: 'text/typescript',
  file_extension: '.ts',
  pygments_lexer: 'typescript',
  // A MIME type CodeMirror 5 (classic Notebook) and JupyterLab both resolve to TypeScript;
  // 'text/typescript' made the classic Notebook fetch a mode file that does not exist.
  codemirror_mode: 'application/typescript',
  nbconvert_exporter: 'script',
} satisfies KernelMessage.ILanguageInfo;

export function kernelInfo(): KernelMessage.IInfoReply {
  return {
    status: 'ok',
    protocol_version: PROTOCOL_VERSION,
    implementation: 'tsgather',
    implementation_version: packageJson.version,
    language_info: LANGUAGE_INFO,
    banner: `tsgather ${packageJson.version}: TypeScript cells on Node.js ${process.version}, with scatter/gather`,
    help_links: [{ text: 'Node.js API', url: 'https://nodejs.org/api/' }],
  };
}
