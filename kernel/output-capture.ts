/** In the cell worker: whatever is written to stdout/stderr (console included) becomes stream output. */
import type { StreamName } from './worker-messages.js';

export function captureStdio(emit: (name: StreamName, text: string) => void): void {
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = process[name];
    stream.write = ((chunk: string | Uint8Array, encoding?: BufferEncoding | (() => void), callback?: () => void) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      if (text) emit(name, text);
      const done = typeof encoding === 'function' ? encoding : callback;
      if (done) process.nextTick(done);
      return true;
    }) as typeof stream.write;
  }
}
