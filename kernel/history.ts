/**
 * The input history of this kernel process, and each cell's output as ipykernel keeps it (the
 * text/plain of its execute_result), for history_request. There is one session, numbered 1;
 * session 0 (or a negative number) in a range request means the current one, as in IPython.
 */
import type { KernelMessage } from '@jupyterlab/services';

export const SESSION = 1;

interface Entry {
  line: number;
  input: string;
  output?: string;
}

type HistoryQuery = KernelMessage.IHistoryRequestMsg['content'];
export type HistoryRow = [session: number, line: number, input: string] | [session: number, line: number, inputOutput: [string, string | null]];

export class History {
  private readonly entries: Entry[] = [];

  add(line: number, input: string): void {
    this.entries.push({ line, input });
  }

  /** What the cell on this line showed as its value. */
  recordOutput(line: number, output: string): void {
    // lines are unique, and the output comes right after its input
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i]!.line === line) return void (this.entries[i]!.output = output);
    }
  }

  /** Every cell run, as [session, line, input] (what the language service builds its view from). */
  inputs(): Array<[session: number, line: number, input: string]> {
    return this.entries.map(({ line, input }) => [SESSION, line, input]);
  }

  query(query: HistoryQuery): HistoryRow[] {
    return this.select(query).map((entry) => (query.output ? [SESSION, entry.line, [entry.input, entry.output ?? null]] : [SESSION, entry.line, entry.input]));
  }

  private select(query: HistoryQuery): Entry[] {
    switch (query.hist_access_type) {
      case 'tail':
        return query.n > 0 ? this.entries.slice(-query.n) : [];
      case 'range': {
        if (query.session > 0 && query.session !== SESSION) return [];
        return this.entries.filter(({ line }) => line >= query.start && (query.stop <= 0 || line < query.stop));
      }
      case 'search': {
        const pattern = globToRegExp(query.pattern ?? '*');
        let found = this.entries.filter(({ input }) => pattern.test(input));
        if (query.unique) found = found.filter((entry, i) => found.findIndex(({ input }) => input === entry.input) === i);
        return query.n ? found.slice(-query.n) : found;
      }
      default:
        return [];
    }
  }
}

/** IPython searches with SQLite's GLOB: `*` any run, `?` one character, `[…]` a class; case matters. */
function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]!;
    const classEnd = char === '[' ? glob.indexOf(']', i + 2) : -1;
    if (classEnd > 0) {
      // a leading ^ negates the class in GLOB as in a RegExp; GLOB has no escapes
      source += `[${glob.slice(i + 1, classEnd).replace(/\\/g, '\\\\')}]`;
      i = classEnd;
    } else if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}
