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

  private patch(stream: NodeJS.WriteStream, name: Stream): void {
    const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (this.job === null) return original(chunk, ...rest);
      this.collected.push([name, typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8')]);
      this.onCapture();
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof stream.write;
  }
}
