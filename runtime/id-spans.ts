/** Something that holds the consecutive job ids `first` to `first + count - 1`, `open` of them still without a result. */
export interface IdSpan {
  first: number;
  count: number;
  open: number;
}

/** Closed spans are swept out once they are this many and half of all. */
const SWEEP_AT = 64;

/**
 * Spans ordered by first id (ids only grow), found by binary search. A span whose last job has
 * its result stays (closed, still found) until closed ones are many and half of all; one pass
 * then sweeps them out, so closing costs nothing per job.
 */
export class SpanList<T extends IdSpan> {
  private spans: T[] = [];
  private closed = 0;

  get all(): readonly T[] {
    return this.spans;
  }

  get last(): T | undefined {
    return this.spans.at(-1);
  }

  push(span: T): void {
    this.spans.push(span);
  }

  /** The span holding `id`, closed or not, if it has not been swept out. */
  find(id: number): T | undefined {
    const spans = this.spans;
    let low = 0;
    let high = spans.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const span = spans[middle]!;
      if (id < span.first) high = middle - 1;
      else if (id >= span.first + span.count) low = middle + 1;
      else return span;
    }
    return undefined;
  }

  /** Called when a span's last job has its result. */
  closedOne(): void {
    if (++this.closed >= SWEEP_AT && this.closed * 2 >= this.spans.length) {
      this.spans = this.spans.filter((span) => span.open > 0);
      this.closed = 0;
    }
  }
}
