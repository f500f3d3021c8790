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

  /** [text, ...binary frames] of a value pushed as `name`. */
  put(controller: string, name: string, plain: boolean, frames: Buffer[]): void {
    const [text, ...bins] = frames;
    this.valuesOf(controller)[name] = decodeParsed(JSON.parse(text?.toString('utf8') ?? 'null'), plain, bins);
  }

  drop(controller: string, name: string): void {
    delete this.byController.get(controller)?.[name];
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
