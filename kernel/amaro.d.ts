// amaro (Node's own TypeScript type stripper, swc compiled to wasm) ships no type declarations.
declare module 'amaro' {
  export interface TransformOptions {
    mode?: 'strip-only' | 'transform';
    sourceMap?: boolean;
  }
  /** Throws a string (swc's diagnostic) on a syntax error. */
  export function transformSync(source: string, options?: TransformOptions): { code: string; map?: string };
}
