/** The one check of a FoldTag (mapReduce onServers), made by the controller on a caller's jobs and by a worker on its job runs. */
import { MAX_FUNCTION_NAME, ProtocolError, type FoldTag } from './messages.js';

/** A fold tag, checked; undefined when none was given. Throws a ProtocolError for anything else. */
export function checkedFold(fold: unknown): FoldTag | undefined {
  if (fold === undefined) return undefined;
  const [key, base, flushMs] = Array.isArray(fold) && fold.length === 3 ? fold : [];
  if (typeof key !== 'string' || key === '' || key.length > MAX_FUNCTION_NAME || !Number.isSafeInteger(base) || typeof flushMs !== 'number' || !(flushMs >= 0)) {
    throw new ProtocolError('a fold must be [key, base id, flush ms ≥ 0]');
  }
  return [key, base as number, flushMs];
}

/** Whether `fold` is absent or a valid FoldTag (checkedFold's rule). */
export function isFoldTag(fold: unknown): fold is FoldTag | undefined {
  try {
    checkedFold(fold);
    return true;
  } catch {
    return false;
  }
}
