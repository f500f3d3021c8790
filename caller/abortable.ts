/** A promise's settle functions that also reject it with `signal.reason` once the signal aborts. */
export function abortable<T>(signal: AbortSignal | undefined, resolve: (value: T) => void, reject: (error: unknown) => void): { resolve: (value: T) => void; reject: (error: unknown) => void } {
  if (!signal) return { resolve, reject };
  const abort = () => reject(signal.reason);
  signal.addEventListener('abort', abort, { once: true });
  const settled =
    <A>(settle: (value: A) => void) =>
    (value: A) => {
      signal.removeEventListener('abort', abort);
      settle(value);
    };
  return { resolve: settled(resolve), reject: settled(reject) };
}
