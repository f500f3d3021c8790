/** Something that holds the consecutive job ids `first` to `first + count - 1`. */
export interface IdSpan {
  first: number;
  count: number;
}

/** The span holding `id` in a list ordered by `first` (binary search), if any. */
export function findSpan<T extends IdSpan>(spans: readonly T[], id: number): T | undefined {
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
