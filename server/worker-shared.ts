/**
 * What controllers pushed to this worker (sg.push), kept per controller: a job reads its own
 * controller's values as the global `shared` (`shared.table`), decoded once when they arrive.
 */
import { decodeParsed } from '../protocol/codec.js';

declare global {
  /** The values the running job's controller pushed to every worker (sg.push), by name. */
  var shared: Record<string, unknown>;
}

export class WorkerShared {
  private readonly byController = new Map<string, Record<string, unknown>>();
  /** Whose values `globalThis.shared` holds now. */
  private current: string | undefined;

  constructor() {
    globalThis.shared = Object.create(null) as Record<string, unknown>;
  }

  /**
   * [text, ...binary frames] of a value pushed as `name`; with `part`, this worker's part of an
   * array scattered as `name` (sg.scatter), and `shared[name + '#part']` says which: `{ index, count }`.
   */
  put(controller: string, name: string, plain: boolean, frames: Buffer[], part?: { index: number; count: number }): void {
    const [text, ...bins] = frames;
    const values = this.valuesOf(controller);
    values[name] = decodeParsed(JSON.parse(text?.toString('utf8') ?? 'null'), plain, bins);
    if (part) values[`${name}#part`] = part;
    else delete values[`${name}#part`];
  }

  drop(controller: string, name: string): void {
    const values = this.byController.get(controller);
    delete values?.[name];
    delete values?.[`${name}#part`];
  }

  /** sg.gather: this worker's part of `name` as jobs left it (modified in place, say), or undefined when it holds none. */
  part(controller: string, name: string): { value: unknown } | undefined {
    const values = this.byController.get(controller);
    return values && `${name}#part` in values ? { value: values[name] } : undefined;
  }

  /** What `controller` pushed as `name`, if anything. */
  value(controller: string, name: string): { value: unknown } | undefined {
    const values = this.byController.get(controller);
    return values && name in values ? { value: values[name] } : undefined;
  }

  forget(controller: string): void {
    this.byController.delete(controller);
    if (this.current === controller) this.current = undefined;
  }

  /** Before a job of `controller`: `shared` is its values (one comparison when it is the same controller as before). */
  select(controller: string): void {
    if (this.current === controller) return;
    this.current = controller;
    globalThis.shared = this.valuesOf(controller);
  }

  private valuesOf(controller: string): Record<string, unknown> {
    let values = this.byController.get(controller);
    if (!values) this.byController.set(controller, (values = Object.create(null) as Record<string, unknown>));
    return values;
  }
}
