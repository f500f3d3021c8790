/** A promise-returning, loosely typed wrapper of an in-process `node:inspector` session. */
import { Session } from 'node:inspector';

export class InspectorSession {
  private readonly session = new Session();

  constructor() {
    this.session.connect();
  }

  /** Any DevTools protocol method; the generated Node typings lack some parameters (e.g. replMode). */
  post<R = unknown>(method: string, params: object = {}): Promise<R> {
    const post = this.session.post.bind(this.session) as unknown as (method: string, params: object, callback: (error: Error | null, result: R) => void) => void;
    return new Promise((resolve, reject) => post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  }

  // biome-ignore lint/suspicious/noExplicitAny: the inspector's params differ by event; each listener reads its own
  on(event: string, listener: (message: { params: any }) => void): void {
    this.session.on(event, listener);
  }

  disconnect(): void {
    this.session.disconnect();
  }
}
