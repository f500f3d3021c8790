/**
 * The kernel thread's side of the language worker: started on the first completion or inspection
 * (the language service takes a second or so to load the standard and Node typings; later
 * requests take milliseconds), and told with each request about the cells run since the last.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { FromLanguageWorker, ToLanguageWorker } from './language-messages.js';
import type { TypedCompletion, TypedInspection } from './language-service.js';

/**
 * The first request waits for the service to load. A later one unanswered this long is stuck on
 * some pathological type: the worker is ended (and started again on the next request), and this
 * request falls back to the runtime. Completion holds up the shell channel, so this stays short.
 */
const FIRST_REQUEST_TIMEOUT_MS = 20_000;
const REQUEST_TIMEOUT_MS = 3_000;
/** After this many unexpected exits the worker is not started again: completion uses the runtime alone. */
const MAX_STARTS = 3;

type History = ReadonlyArray<readonly [session: number, line: number, code: string]>;
type Request = ToLanguageWorker extends infer T ? (T extends unknown ? Omit<T, 'id' | 'cells' | 'reset'> : never) : never;

export class LanguageClient {
  private worker?: Worker;
  /** The current worker has answered a request: it has loaded. */
  private warm = false;
  private starts = 0;
  /** How many history entries the current worker has been sent. */
  private sent = 0;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  constructor(
    private readonly cwd: string,
    private readonly log: Logger,
  ) {}

  complete(history: History, code: string, cursor: number): Promise<TypedCompletion | undefined> {
    return this.request(history, { op: 'complete', code, cursor }) as Promise<TypedCompletion | undefined>;
  }

  inspect(history: History, code: string, cursor: number, detail: 0 | 1): Promise<TypedInspection | undefined> {
    return this.request(history, { op: 'inspect', code, cursor, detail }) as Promise<TypedInspection | undefined>;
  }

  /** Undefined if the service is unavailable or failed; the caller then asks the runtime. */
  private async request(history: History, request: Request): Promise<unknown> {
    const worker = this.ensureWorker();
    if (!worker) return undefined;
    const reset = this.sent === 0 || this.sent > history.length;
    const cells = history.slice(reset ? 0 : this.sent).map(([, , code]) => code);
    this.sent = history.length;
    const id = this.nextId++;
    const timeout = this.warm ? REQUEST_TIMEOUT_MS : FIRST_REQUEST_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        timer = setTimeout(() => {
          reject(new Error(`no answer within ${timeout} ms`));
          if (this.worker === worker) this.forget(worker);
          void worker.terminate();
        }, timeout);
        worker.postMessage({ ...request, id, cells, reset } as ToLanguageWorker);
      });
      if (this.worker === worker) this.warm = true;
      return value;
    } catch (error) {
      this.log.warn({ err: error, op: request.op }, 'the language service failed; asking the runtime');
      return undefined;
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
    }
  }

  private ensureWorker(): Worker | undefined {
    if (this.worker) return this.worker;
    if (this.starts >= MAX_STARTS) return undefined;
    this.starts++;
    this.sent = 0;
    this.warm = false;
    const worker = new Worker(new URL('./language-worker.js', import.meta.url), { workerData: { cwd: this.cwd } });
    worker.unref();
    worker.on('message', (message: FromLanguageWorker) => {
      const pending = this.pending.get(message.id);
      if ('error' in message) pending?.reject(new Error(message.error));
      else pending?.resolve(message.value);
    });
    worker.on('error', (error) => this.log.warn({ err: error }, 'language worker error'));
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.forget(worker);
      this.log.warn({ code }, 'the language worker exited');
    });
    this.worker = worker;
    return worker;
  }

  /** The worker is gone or going: its requests will not be answered. */
  private forget(worker: Worker): void {
    if (this.worker === worker) this.worker = undefined;
    const error = new Error('the language worker stopped');
    for (const pending of this.pending.values()) pending.reject(error);
  }
}
