/**
 * What travels with a definition besides its source (DefinitionSpec's optional fields): the names
 * it uses from the caller's side, by value (captures), where its imports resolve from (base), and
 * local modules shipped with it (modules). The caller finds and checks them
 * (caller/definition-capture.ts); a worker compiles the source in their scope (server/definition-scope.ts).
 */

/** The name a definition's `import(x)` calls are rewritten to: a worker binds it to an importer that resolves from `base`. The kernel's cells use the same name. */
export const DEFINITION_IMPORT = '__tsgather_import';

/** The global a job reads pushed values from (sg.push): `shared.table`. */
export const WORKER_SHARED = 'shared';

/** Names a worker supplies to every definition: never captured, never reported as missing. */
export const DEFINITION_PROVIDED: readonly string[] = [DEFINITION_IMPORT, 'require', 'arguments', WORKER_SHARED];

/** One name a definition uses, shipped with it. */
export type CapturedName =
  /** A value, as protocol/codec.ts encodes it (`text`, `plain`), its binary frames in base64. */
  | { name: string; kind: 'value'; text: string; plain: boolean; bins?: string[] }
  /** A function (or class), as source; `method` when it is an object literal's method shorthand (`m(x) { … }`). */
  | { name: string; kind: 'function'; source: string; method?: boolean }
  /** What a module exports: `import(specifier)`, then `path` followed (`['default']`, `['default', 'chunk']`; `[]` for the namespace). */
  | { name: string; kind: 'module'; specifier: string; path: string[] };

/** A local module shipped with a definition (`sg.sync()`): its path relative to `base`, its text and the hex SHA-256 of that text. */
export interface ShippedModule {
  path: string;
  text: string;
  hash: string;
}

/** A captured name must be a plain identifier: it becomes a variable of the scope the definition is compiled in. */
export const CAPTURE_NAME = /^[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*$/u;
