/**
 * A TypeScript 5 language service over two virtual files in the notebook's directory: the cell
 * being edited (after the prelude of earlier cells' declarations) and the kernel's cell globals.
 * It is created once and kept warm: each request bumps the cell file's version, and the service
 * re-parses only that file. Packages resolve as cells import them: from the notebook's directory
 * first, then from the kernel's own package (which has `tsgather` itself and @types/node).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as TS from 'typescript5';
import { ts } from './typescript.js';

/** The kernel package's root (this file is dist/kernel/language-host.js). */
export const KERNEL_DIR = dirname(fileURLToPath(import.meta.url));
const PACKAGE_ROOT = join(KERNEL_DIR, '..', '..');

export class LanguageHost {
  readonly cellFile: string;
  readonly globalsFile: string;
  readonly service: TS.LanguageService;
  private readonly texts = new Map<string, { text: string; version: number }>();
  private readonly options: TS.CompilerOptions;
  private readonly resolutionCache: TS.ModuleResolutionCache;
  private readonly resolutionHost: TS.ModuleResolutionHost = ts.sys;
  /** A package was not found: it may be installed later. */
  private missedPackage = false;

  constructor(readonly cwd: string) {
    this.cellFile = join(cwd, '__tsgather_cell.mts');
    this.globalsFile = join(cwd, '__tsgather_globals.d.mts');
    this.options = compilerOptions(cwd);
    this.resolutionCache = ts.createModuleResolutionCache(cwd, (name) => name, this.options);
    this.setText(this.cellFile, '');
    this.setText(this.globalsFile, 'export {};');
    this.service = ts.createLanguageService(this.host(), ts.createDocumentRegistry());
  }

  setText(file: string, text: string): void {
    const current = this.texts.get(file);
    if (current?.text === text) return;
    this.texts.set(file, { text, version: (current?.version ?? 0) + 1 });
  }

  text(file: string): string {
    return this.texts.get(file)?.text ?? '';
  }

  /** Forgets the packages not found so far (the cache would remember them as missing for ever). */
  retryMissingPackages(): void {
    if (!this.missedPackage) return;
    this.missedPackage = false;
    this.resolutionCache.clear();
  }

  program(): TS.Program {
    const program = this.service.getProgram();
    if (!program) throw new Error('the TypeScript language service has no program');
    return program;
  }

  private host(): TS.LanguageServiceHost {
    const host: TS.LanguageServiceHost & { getModuleResolutionCache(): TS.ModuleResolutionCache } = {
      // not in the public typings, but read by the program: without it, every keystroke re-reads package.json files
      getModuleResolutionCache: () => this.resolutionCache,
      getCompilationSettings: () => this.options,
      getScriptFileNames: () => [this.globalsFile, this.cellFile],
      getScriptVersion: (file) => String(this.texts.get(file)?.version ?? 0),
      getScriptSnapshot: (file) => {
        const text = this.texts.get(file)?.text ?? ts.sys.readFile(file);
        return text === undefined ? undefined : ts.ScriptSnapshot.fromString(text);
      },
      getCurrentDirectory: () => this.cwd,
      getDefaultLibFileName: (options) => ts.getDefaultLibFilePath(options),
      fileExists: (file) => this.texts.has(file) || ts.sys.fileExists(file),
      readFile: (file, encoding) => this.texts.get(file)?.text ?? ts.sys.readFile(file, encoding),
      readDirectory: ts.sys.readDirectory,
      directoryExists: ts.sys.directoryExists,
      getDirectories: ts.sys.getDirectories,
      realpath: ts.sys.realpath,
      useCaseSensitiveFileNames: () => ts.sys.useCaseSensitiveFileNames,
      resolveModuleNameLiterals: (literals, containingFile, redirected, options, containingSourceFile) =>
        literals.map((literal) => this.resolve(literal.text, containingFile, redirected, options, ts.getModeForUsageLocation(containingSourceFile, literal, options))),
    };
    return host;
  }

  /** As cell-scope.ts resolves imports at run time: from the notebook's directory, else from the kernel's package. */
  private resolve(
    name: string,
    containingFile: string,
    redirected: TS.ResolvedProjectReference | undefined,
    options: TS.CompilerOptions,
    mode: TS.ResolutionMode,
  ): TS.ResolvedModuleWithFailedLookupLocations {
    const resolved = ts.resolveModuleName(name, containingFile, options, this.resolutionHost, this.resolutionCache, redirected, mode);
    if (resolved.resolvedModule || !this.texts.has(containingFile) || /^\.{0,2}\//.test(name)) return resolved;
    const fromKernel = ts.resolveModuleName(name, join(KERNEL_DIR, 'cell.mts'), options, this.resolutionHost, this.resolutionCache, redirected, mode);
    if (fromKernel.resolvedModule) return fromKernel;
    this.missedPackage = true;
    return resolved;
  }
}

function compilerOptions(cwd: string): TS.CompilerOptions {
  return {
    target: ts.ScriptTarget.ESNext,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.esnext.d.ts'],
    types: ['node'],
    typeRoots: typeRoots(cwd),
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    esModuleInterop: true,
    resolveJsonModule: true,
    allowImportingTsExtensions: true,
  };
}

/** The notebook's own @types first; @types/node from the kernel's dependencies if it has none. */
function typeRoots(cwd: string): string[] {
  const roots = (ts.getEffectiveTypeRoots({}, { getCurrentDirectory: () => cwd }) ?? []).filter((root) => ts.sys.directoryExists(root));
  if (roots.some((root) => ts.sys.fileExists(join(root, 'node', 'package.json')))) return roots;
  try {
    const nodeTypes = createRequire(join(PACKAGE_ROOT, 'package.json')).resolve('@types/node/package.json');
    return [...roots, dirname(dirname(nodeTypes))];
  } catch {
    return roots;
  }
}
