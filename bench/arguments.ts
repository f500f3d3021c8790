/** The pieces both bench command lines (`npm run bench` and `npm run bench -- --scale`) are read with. */

/** Each flag of `argv` with a reader of the value after it (which says so when it is missing). */
export function* flagsOf(argv: string[]): Generator<{ flag: string; value: () => string }> {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    yield {
      flag,
      value: () => {
        const next = argv[++i];
        if (next === undefined) throw new Error(`${flag} needs a value`);
        return next;
      },
    };
  }
}

export function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive whole number`);
  return n;
}

/** `--only a,b`: the sections named, each one of `known`. */
export function onlySections<S extends string>(text: string, known: readonly S[]): Set<S> {
  const wanted = text.split(',');
  const unknown = wanted.filter((s) => !(known as readonly string[]).includes(s));
  if (unknown.length) throw new Error(`--only: unknown section(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  return new Set(wanted as S[]);
}
