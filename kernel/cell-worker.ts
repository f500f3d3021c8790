/**
 * The cell worker thread: user code runs here, in this thread's global scope, while the kernel's
 * sockets stay on the main thread. The main thread can stop a runaway synchronous cell with
 * Runtime.terminateExecution through the NodeWorker inspector domain (see executor.ts).
 */
import { stripVTControlCharacters } from 'node:util';
import { parentPort, workerData } from 'node:worker_threads';
import { installCellScope } from './cell-scope.js';
import { complete, inspectAt } from './completion.js';
import { Evaluator } from './evaluate.js';
import { errorOutcome, interruptedOutcome, renderValue, thrownOutcome } from './format.js';
import { InspectorSession } from './inspector-session.js';
import { captureStdio } from './output-capture.js';
import type { ExecuteOutcome, FromWorker, RunnableCell, ToWorker, WorkerData } from './worker-messages.js';
import { WorkerOutbox } from './worker-outbox.js';
import { CellRun, inCancelledRun, runCell, trackCellTimers } from './cell-run.js';
import { rememberCell } from './cell-sources.js';
import { releaseDeadZone } from './dead-zone.js';

const port = parentPort!;
const { cwd } = workerData as WorkerData;
const outbox = new WorkerOutbox((message) => port.postMessage(message));
const send = (message: FromWorker) => outbox.send(message);

trackCellTimers();
// What an interrupted cell would still print or display is dropped.
captureStdio((name, text) => inCancelledRun() || send({ type: 'stream', name, text }));
// Errors from background work must not end the thread (and with it every variable).
process.on('uncaughtException', (error) => process.stderr.write(`Uncaught ${describeBackgroundError(error)}\n`));
process.on('unhandledRejection', (reason) => process.stderr.write(`Unhandled rejection: ${describeBackgroundError(reason)}\n`));

const pendingInput = new Map<number, { resolve: (value: string) => void; reject: (error: Error) => void }>();
let nextInputId = 1;
const requestInput = (prompt: string, password: boolean) =>
  new Promise<string>((resolve, reject) => {
    if (inCancelledRun()) return;
    const id = nextInputId++;
    pendingInput.set(id, { resolve, reject });
    send({ type: 'input', id, prompt, password });
  });

const evaluator = new Evaluator(new InspectorSession());
const scope = await installCellScope({
  cwd,
  display: (message) => inCancelledRun() || send({ type: 'display', ...message }),
  write: (name, text) => process[name].write(text),
  input: requestInput,
});

/** The execute request in progress, which an interrupt settles at once if the thread is free. */
let running: { id: number; interrupt: () => void } | undefined;

/**
 * Runs a cell as a CellRun. Interrupted, the run is cancelled (see cell-run.ts), and its top-level
 * declarations still uninitialised are declared again as undefined, so that no name is left in the
 * temporal dead zone.
 */
async function execute(id: number, cell: RunnableCell): Promise<ExecuteOutcome> {
  rememberCell(cell);
  const run = new CellRun();
  const interrupted = new Promise<ExecuteOutcome>((resolve) => {
    running = {
      id,
      interrupt: () => {
        run.cancel();
        resolve(interruptedOutcome());
      },
    };
  });
  try {
    const outcome = await Promise.race([runCell(run, () => evaluate(cell.js)), interrupted]);
    if (outcome !== TERMINATED) return outcome;
    run.cancel();
    return interruptedOutcome();
  } finally {
    running = undefined;
    if (run.cancelled) await releaseDeadZone(evaluator, cell.lexical).catch((error) => process.stderr.write(`${describeBackgroundError(error)}\n`));
    else run.complete();
  }
}

/** Runtime.terminateExecution stopped a busy cell. */
const TERMINATED = interruptedOutcome();

async function evaluate(js: string): Promise<ExecuteOutcome> {
  const evaluation = await evaluator.run(js);
  if (evaluation.kind === 'terminated') return TERMINATED;
  await scope.afterCell(); // functions defined from earlier cells follow what this cell redefined
  if (evaluation.kind === 'thrown') return thrownOutcome(evaluation.value);
  try {
    const rendered = renderValue(evaluation.value);
    return rendered ? { status: 'ok', ...rendered } : { status: 'ok' };
  } catch (error) {
    return thrownOutcome(error);
  }
}

async function handle(message: ToWorker): Promise<unknown> {
  switch (message.op) {
    case 'execute':
      return execute(message.id, message.cell as RunnableCell);
    case 'complete':
      return complete(evaluator, message.code as string, message.cursor as number);
    case 'inspect':
      return inspectAt(evaluator, message.code as string, message.cursor as number, message.detail as 0 | 1);
    case 'shutdown':
      return scope.engine?.closeAll();
  }
}

port.on('message', (message: ToWorker) => {
  if (message.op === 'interrupt') {
    if (running?.id === message.execId) running.interrupt();
    send({ type: 'interrupted', execId: message.execId });
    return;
  }
  if (message.op === 'input') {
    const waiter = pendingInput.get(message.id);
    pendingInput.delete(message.id);
    if (message.error !== undefined) waiter?.reject(new Error(message.error));
    else waiter?.resolve(message.value ?? '');
    return;
  }
  const { id } = message;
  handle(message).then(
    (value) => send({ type: 'reply', id, value }),
    (error: Error) => send({ type: 'reply', id, error: error.stack ?? String(error) }),
  );
});

send({ type: 'ready', warnings: scope.engineError ? [scope.engineError] : [] });

/** The traceback as stream text, without the rule that opens an error output. */
function describeBackgroundError(error: unknown): string {
  const { traceback } = error instanceof Error ? thrownOutcome(error) : errorOutcome('Error', String(error));
  return traceback.filter((entry) => !/^-{20,}/.test(stripVTControlCharacters(entry))).join('\n');
}
