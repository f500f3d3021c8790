/**
 * The kernel thread's side of cell execution. Cells run in a worker thread (cell-worker.ts), so
 * the sockets, heartbeat and control channel stay responsive during a synchronous cell. To
 * interrupt, the worker is first asked (it settles an awaiting cell at once); if it does not
 * answer, it is stuck in synchronous code, and Runtime.terminateExecution — sent through the
 * NodeWorker inspector domain, which V8 services even inside a busy loop — stops that code while
 * the thread, its globals and its variables live on.
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { DisplayMessage } from './display.js';
import { errorOutcome } from './format.js';
import { InspectorSession } from './inspector-session.js';
import { CellSyntaxError, compileCell, type CompiledCell } from './transpile.js';
import { syntaxErrorTraceback } from './traceback.js';
import type { ExecuteOutcome, FromWorker, RequestOp, Requests, StreamName, ToWorker, WorkerData } from './worker-messages.js';

/**
 * The cell worker gets the kernel's own Node options, plus the one its imports need. A worker thread
 * refuses V8 options in its execArgv (the kernel's --min-semi-space-size, or a --max-old-space-size
 * added to kernel.json) and Node's error names them: they are left out, since V8's flags hold for
 * every thread of the process anyway.
 */
function startCellWorker(workerData: WorkerData, log: Logger): Worker {
  const url = new URL('./cell-worker.js', import.meta.url);
  const needed = '--experimental-import-meta-resolve';
  try {
    return new Worker(url, { workerData, execArgv: [...process.execArgv, needed] });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw error;
    const refused = new Set(/flags: (.*)$/.exec((error as Error).message)?.[1]?.split(', '));
    const kept = process.execArgv.filter((option) => !refused.has(option));
    try {
      return new Worker(url, { workerData, execArgv: [...kept, needed] });
    } catch (again) {
      log.warn({ err: again, dropped: kept }, "the cell worker starts without the kernel's Node options: a worker thread refused them");
      return new Worker(url, { workerData, execArgv: [needed] });
    }
  }
}

function syntaxErrorOutcome(error: CellSyntaxError, code: string, sourceName: string): ExecuteOutcome {
  if (!error.loc) return errorOutcome('SyntaxError', error.message, error.detail);
  const message = error.message.replace(/\s*\(\d+:\d+\)$/, '');
  return { status: 'error', ename: 'SyntaxError', evalue: message, traceback: syntaxErrorTraceback('SyntaxError', message, code, error.loc, sourceName) };
}

/** How long a free worker may take to acknowledge an interrupt before it is taken to be busy. */
const INTERRUPT_GRACE_MS = 250;
const SHUTDOWN_GRACE_MS = 5000;

export interface InputAnswer {
  value?: string;
  error?: string;
}

export interface ExecutorEvents {
  stream: [name: StreamName, text: string];
  display: [message: DisplayMessage];
  input: [prompt: string, password: boolean, answer: (answer: InputAnswer) => void];
}

interface Pending {
  // biome-ignore lint/suspicious/noExplicitAny: one table holds the resolvers of every request type
  resolve: (value: any) => void;
  reject: (error: Error) => void;
}

export class Executor extends EventEmitter<ExecutorEvents> {
  private readonly inspector = new InspectorSession();
  private worker?: Worker;
  private ready: Promise<void> = Promise.resolve();
  private workerSession?: string;
  private readonly replies = new Map<number, Pending>();
  private readonly inspectorReplies = new Map<number, Pending>();
  private readonly interruptAcks = new Map<number, () => void>();
  private nextId = 1;
  private running?: number;
  private stopping = false;

  constructor(
    private readonly cwd: string,
    private readonly log: Logger,
  ) {
    super();
  }

  async start(): Promise<void> {
    this.inspector.on('NodeWorker.attachedToWorker', ({ params }) => this.onAttached(params));
    this.inspector.on('NodeWorker.receivedMessageFromWorker', ({ params }) => this.onInspectorMessage(params.message));
    await this.inspector.post('NodeWorker.enable', { waitForDebuggerOnStart: true });
    await this.spawn();
  }

  async execute(code: string, sourceName: string): Promise<ExecuteOutcome> {
    let compiled: CompiledCell;
    try {
      compiled = compileCell(code, sourceName);
    } catch (error) {
      if (error instanceof CellSyntaxError) return syntaxErrorOutcome(error, code, sourceName);
      throw error;
    }
    await this.ready;
    const id = this.nextId++;
    this.running = id;
    try {
      return await this.request('execute', { cell: { ...compiled, name: sourceName, code } }, id);
    } catch (error) {
      return errorOutcome('CellRuntimeExited', (error as Error).message);
    } finally {
      this.running = undefined;
    }
  }

  complete(code: string, cursor: number): Promise<Requests['complete']['reply']> {
    return this.request('complete', { code, cursor });
  }

  inspect(code: string, cursor: number, detail: 0 | 1): Promise<Requests['inspect']['reply']> {
    return this.request('inspect', { code, cursor, detail });
  }

  async interrupt(): Promise<void> {
    const id = this.running;
    const worker = this.worker;
    if (id === undefined || !worker) return;
    const acknowledged = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), INTERRUPT_GRACE_MS);
      this.interruptAcks.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    worker.postMessage({ op: 'interrupt', execId: id } satisfies ToWorker);
    const free = await acknowledged;
    this.interruptAcks.delete(id);
    if (free) return;
    this.log.info({ id }, 'cell busy: terminating its execution');
    await this.toWorkerInspector('Runtime.terminateExecution').catch((error) => this.log.warn({ err: error }, 'terminateExecution failed'));
    // the termination may have swallowed the first interrupt message, if the thread was between callbacks
    if (this.running === id) worker.postMessage({ op: 'interrupt', execId: id } satisfies ToWorker);
  }

  /** Lets the worker close what cells opened (scatter/gather instances), then ends it. */
  async stop(): Promise<void> {
    this.stopping = true;
    const worker = this.worker;
    if (worker) {
      await this.interrupt();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)));
      await Promise.race([this.request('shutdown', {}).catch((error) => this.log.warn({ err: error }, 'worker shutdown failed')), timeout]);
      clearTimeout(timer);
      await worker.terminate();
    }
    this.inspector.disconnect();
  }

  private spawn(): Promise<void> {
    const worker = startCellWorker({ cwd: this.cwd }, this.log);
    this.worker = worker;
    this.ready = new Promise((resolve, reject) => {
      worker.once('exit', (code) => reject(new Error(`the cell worker exited during start-up (code ${code})`)));
      worker.once('message', (message: FromWorker) => {
        if (message.type !== 'ready') return reject(new Error(`unexpected first message ${message.type}`));
        for (const warning of message.warnings) this.log.warn(warning);
        resolve();
      });
    });
    worker.on('message', (message: FromWorker) => this.onMessage(message));
    worker.on('error', (error) => this.log.error({ err: error }, 'cell worker error'));
    worker.on('exit', (code) => this.onExit(worker, code));
    return this.ready;
  }

  private request<K extends RequestOp>(op: K, payload: Requests[K]['request'], id = this.nextId++): Promise<Requests[K]['reply']> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new Error('no cell worker'));
    return new Promise((resolve, reject) => {
      this.replies.set(id, { resolve, reject });
      worker.postMessage({ op, id, ...payload } satisfies ToWorker);
    });
  }

  private onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'stream':
        this.emit('stream', message.name, message.text);
        break;
      case 'display': {
        const { type, ...display } = message;
        this.emit('display', display);
        break;
      }
      case 'input':
        this.emit('input', message.prompt, message.password, (answer) => this.worker?.postMessage({ op: 'input', id: message.id, ...answer } satisfies ToWorker));
        break;
      case 'interrupted':
        this.interruptAcks.get(message.execId)?.();
        break;
      case 'reply': {
        const pending = this.replies.get(message.id);
        this.replies.delete(message.id);
        if (message.error !== undefined) pending?.reject(new Error(message.error));
        else pending?.resolve(message.value);
        break;
      }
    }
  }

  private onExit(worker: Worker, code: number): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    const error = new Error(`the cell runtime exited (code ${code}); its variables are gone`);
    // a request in flight reports the exit as its error; otherwise the next cell's output tells
    const unnoticed = this.replies.size === 0;
    for (const pending of this.replies.values()) pending.reject(error);
    this.replies.clear();
    if (this.stopping) return;
    this.log.warn({ code }, 'cell worker exited; starting a new one');
    if (unnoticed) this.emit('stream', 'stderr', `${error.message}; a fresh one is starting.\n`);
    this.spawn().catch((startError) => this.log.error({ err: startError }, 'cannot restart the cell worker'));
  }

  private onAttached(params: { sessionId: string; workerInfo: { url: string } }): void {
    const ours = params.workerInfo.url.endsWith('/cell-worker.js');
    if (ours) this.workerSession = params.sessionId;
    const session = params.sessionId;
    void this.toWorkerInspector('Runtime.runIfWaitingForDebugger', {}, session).then(() => {
      if (!ours) return this.inspector.post('NodeWorker.detach', { sessionId: session });
    });
  }

  private toWorkerInspector(method: string, params: object = {}, sessionId = this.workerSession): Promise<unknown> {
    if (!sessionId) return Promise.reject(new Error('not attached to the cell worker'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.inspectorReplies.set(id, { resolve, reject });
      this.inspector.post('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method, params }) }).catch(reject);
    });
  }

  private onInspectorMessage(text: string): void {
    const message = JSON.parse(text) as { id?: number; result?: unknown; error?: { message: string } };
    const pending = message.id === undefined ? undefined : this.inspectorReplies.get(message.id);
    if (!pending) return;
    this.inspectorReplies.delete(message.id!);
    if (message.error) pending.reject(new Error(message.error.message));
    else pending.resolve(message.result);
  }
}
