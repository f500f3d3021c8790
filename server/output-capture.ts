/**
 * Console output written while a job runs is collected and sent with its result, tagged with the
 * job, instead of going down a pipe where it could interleave with anything. Output outside a job
 * still reaches the real stream, which the server relays as worker output.
 */
type Stream = 'stdout' | 'stderr';

/** What take() returns when nothing was written: shared, so a quiet job allocates nothing. */
const NOTHING: ReadonlyArray<[Stream, string]> = Object.freeze([]);

export class OutputCapture {
  private job: number | null = null;
  private collected: Array<[Stream, string]> = [];
  /** The streams' own write functions, for close(). */
  private readonly originals: Array<[NodeJS.WriteStream, NodeJS.WriteStream['write'], NodeJS.WriteStream['write']]> = [];
  private closed = false;

  /** `onCapture` is told of output captured within a job, so a job that runs long can have it sent early. */
  constructor(private readonly onCapture: () => void = () => {}) {
    this.patch(process.stdout, 'stdout');
    this.patch(process.stderr, 'stderr');
  }

  begin(job: number): void {
    this.job = job;
  }

  end(): void {
    this.job = null;
  }

  take(): ReadonlyArray<[Stream, string]> {
    if (this.collected.length === 0) return NOTHING;
    const taken = this.collected;
    this.collected = [];
    return taken;
  }

  /** Stops capturing and gives the streams their own write back (a test's runtime ends; a worker never closes its capture). */
  close(): void {
    this.closed = true;
    this.job = null;
    // Patched again since (by another capture): ours then passes everything through instead.
    for (const [stream, original, patched] of this.originals) if (stream.write === patched) stream.write = original;
  }

  private patch(stream: NodeJS.WriteStream, name: Stream): void {
    const own = stream.write;
    const original = own.bind(stream) as (...args: unknown[]) => boolean;
    const patched = ((chunk: unknown, ...rest: unknown[]) => {
      if (this.job === null || this.closed) return original(chunk, ...rest);
      this.collected.push([name, typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8')]);
      this.onCapture();
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof stream.write;
    stream.write = patched;
    this.originals.push([stream, own, patched]);
  }
}
