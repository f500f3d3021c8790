/**
 * TypeScript 5's compiler API, for the language worker. Loaded with require: importing its 9 MB
 * CommonJS bundle from ESM has Node scan the whole file for export names first (~0.4 s more at
 * start-up). Types come from `import type * as TS from 'typescript5'`.
 */
import { createRequire } from 'node:module';
import type * as TS from 'typescript5';

export const ts = createRequire(import.meta.url)('typescript5') as typeof TS;
