/**
 * Job output written to this process's stdout and stderr when nobody listens for 'output', each
 * line tagged with its job and worker. A line a job left open is continued by that job's next
 * output, or ended before another's tag, so tags are never glued onto a line.
 */
import type { JobOutput } from './types.js';

export class OutputEcho {
  /** Per stream, the tag of a line not yet ended with a newline. */
  private readonly openLines = new Map<string, string>();

  write(output: JobOutput): void {
    if (output.text === '') return;
    const tag = `[${output.job === null ? '' : `job ${output.job} `}w${output.worker}@${output.host}] `;
    const open = this.openLines.get(output.stream);
    const start = open === tag ? '' : open === undefined ? tag : `\n${tag}`;
    const text = output.text.replace(/\n(?!$)/g, `\n${tag}`);
    if (text.endsWith('\n')) this.openLines.delete(output.stream);
    else this.openLines.set(output.stream, tag);
    (output.stream === 'stderr' ? process.stderr : process.stdout).write(start + text);
  }
}
