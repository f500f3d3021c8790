/**
 * The types of the globals every cell sees (cell-scope.ts puts them there at run time): the
 * `tsgather` exports, with ScatterGather's notebook additions, plus `display` and `input`.
 */
import { join } from 'node:path';
import { ts } from './typescript.js';
import { KERNEL_DIR, type LanguageHost } from './language-host.js';

/** cell-scope.ts's PACKAGE_NAME (importing that module here would load the transpiler too). */
const PACKAGE_NAME = 'tsgather';
const IDENTIFIER = /^[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*$/u;

const PROBE = `import * as tsgather from '${PACKAGE_NAME}';\nexport {};\n`;

/** Writes the globals file: first a probe that finds the package's exports, then their declarations. */
export function installCellGlobals(host: LanguageHost): void {
  host.setText(host.globalsFile, PROBE);
  const { values, scatterGatherFile } = packageExports(host);
  const kernelModule = (name: string) => JSON.stringify(join(KERNEL_DIR, `${name}.js`));
  const lines = [
    `import * as tsgather from '${PACKAGE_NAME}';`,
    `import type { Display } from ${kernelModule('display')};`,
    `import type { NotebookAdditions } from ${kernelModule('notebook-additions')};`,
  ];
  if (scatterGatherFile) {
    lines.push(`declare module ${JSON.stringify(scatterGatherFile)} {`, '  interface ScatterGather extends NotebookAdditions {}', '}');
  }
  lines.push(
    'declare global {',
    ...values.map((name) => `  export import ${name} = tsgather.${name};`),
    '  /** Shows a value as the cell output (`display.html`, `.markdown`, `.json`, `.png`, `.svg`, `.vegalite`, `.mime` for other formats); returns a handle whose `update()` replaces it. */',
    '  const display: Display;',
    '  /** Asks the notebook user for a line of text (with `{ password: true }`, hidden). */',
    '  function input(prompt?: string, options?: { password?: boolean }): Promise<string>;',
    '  /** In a job, on its worker: the values `sg.push` put there, by name (`shared.table`). */',
    '  const shared: Record<string, any>;',
    '}',
    'export {};',
  );
  host.setText(host.globalsFile, `${lines.join('\n')}\n`);
}

function packageExports(host: LanguageHost): { values: string[]; scatterGatherFile?: string } {
  const program = host.program();
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(host.globalsFile);
  const specifier = file?.statements.find(ts.isImportDeclaration)?.moduleSpecifier;
  const module = specifier && checker.getSymbolAtLocation(specifier);
  if (!module) return { values: [] };
  const values: string[] = [];
  let scatterGatherFile: string | undefined;
  for (const symbol of checker.getExportsOfModule(module)) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    if (!(target.flags & ts.SymbolFlags.Value) || !IDENTIFIER.test(symbol.name)) continue;
    values.push(symbol.name);
    if (symbol.name === 'ScatterGather' && target.flags & ts.SymbolFlags.Class) {
      scatterGatherFile = target.declarations?.[0]?.getSourceFile().fileName.replace(/\.d\.([mc]?)ts$/, '.$1js');
    }
  }
  return { values, scatterGatherFile };
}
