/** sg.push: a value encoded once here, for every worker, present and future. */
import { encodeValue, type Frames } from '../protocol/index.js';

/** The put request's frames: head (id filled in by Requests), the value's text, its binary frames. */
export function putMessage(name: string, value: unknown): { head: { t: 'put'; id: number; name: string; plain: boolean }; rest: Frames } {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) throw new TypeError('push needs a name of 1 to 256 characters');
  const encoded = encodeValue(value, `pushed value '${name}'`);
  return { head: { t: 'put', id: 0, name, plain: encoded.plain }, rest: [encoded.text, ...encoded.bins] };
}
