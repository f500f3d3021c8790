/**
 * complete_request, inspect_request and is_complete_request. Jupyter cursors count code points.
 * Completion and inspection come from types first (the language worker, see language-service.ts);
 * the live values in the cell worker (completion.ts) fill in where the types know nothing, e.g. the
 * members of something typed `any`, and show the current value of a plain variable.
 */
import type { KernelMessage } from '@jupyterlab/services';
import { codePointToUtf16, utf16ToCodePoint } from './code-points.js';
import { isComplete } from './is-complete.js';
import type { Kernel, Request } from './kernel.js';
import { LanguageClient } from './language-client.js';
import type { TypedCompletion, TypedInspection } from './language-service.js';
import type { Inspection } from './worker-messages.js';

const languageClients = new WeakMap<Kernel, LanguageClient>();

function language(kernel: Kernel): LanguageClient {
  let client = languageClients.get(kernel);
  if (!client) {
    client = new LanguageClient(process.cwd(), kernel.log);
    languageClients.set(kernel, client);
  }
  return client;
}

export async function handleComplete(kernel: Kernel, request: Request<KernelMessage.ICompleteRequestMsg>): Promise<void> {
  const { code, cursor_pos } = request.message.content;
  const cursor = codePointToUtf16(code, cursor_pos);
  const points = (offset: number) => utf16ToCodePoint(code, offset);
  try {
    const typed = await language(kernel).complete(kernel.history.inputs(), code, cursor);
    const { matches, start, end, types } = typed?.matches ? fromTypes(typed) : { ...(await kernel.executor.complete(code, cursor)), types: undefined };
    const metadata: Extract<KernelMessage.ICompleteReplyMsg['content'], { status: 'ok' }>['metadata'] = types
      ? { _jupyter_types_experimental: types.map((type) => ({ ...type, start: points(start), end: points(end) })) }
      : {};
    kernel.reply<KernelMessage.ICompleteReplyMsg>(request, { status: 'ok', matches, cursor_start: points(start), cursor_end: points(end), metadata });
  } catch (error) {
    kernel.log.warn({ err: error }, 'completion failed');
    kernel.reply<KernelMessage.ICompleteReplyMsg>(request, { status: 'ok', matches: [], cursor_start: cursor_pos, cursor_end: cursor_pos, metadata: {} });
  }
}

function fromTypes(typed: TypedCompletion) {
  const entries = typed.matches ?? [];
  return {
    matches: entries.map((entry) => entry.name),
    start: typed.start,
    end: typed.end,
    types: entries.map((entry) => ({ text: entry.name, type: jupyterType(entry.kind), signature: '' })),
  };
}

/** The completion kinds JupyterLab has icons for. */
function jupyterType(kind: string): string {
  if (/function|method|constructor|call|construct/.test(kind)) return 'function';
  if (/class|interface|type|enum$|primitive/.test(kind)) return 'class';
  if (/module/.test(kind)) return 'module';
  if (/property|getter|setter|enum member|attribute/.test(kind)) return 'property';
  // an alias (the tsgather globals, imported names) may be of any kind
  if (/var|let|const|parameter|alias/.test(kind)) return 'instance';
  if (kind === 'keyword') return 'keyword';
  if (/string|directory|script/.test(kind)) return 'path';
  return 'statement';
}

export async function handleInspect(kernel: Kernel, request: Request<KernelMessage.IInspectRequestMsg>): Promise<void> {
  const { code, cursor_pos, detail_level } = request.message.content;
  const cursor = codePointToUtf16(code, cursor_pos);
  const detail = detail_level === 1 ? 1 : 0;
  try {
    const typed = await language(kernel).inspect(kernel.history.inputs(), code, cursor, detail);
    const runtime = !typed || typed.context === 'code' ? await kernel.executor.inspect(code, cursor, detail) : undefined;
    const { found, data } = merge(typed, runtime);
    kernel.reply<KernelMessage.IInspectReplyMsg>(request, { status: 'ok', found, data, metadata: {} });
  } catch (error) {
    kernel.log.warn({ err: error }, 'inspection failed');
    kernel.reply<KernelMessage.IInspectReplyMsg>(request, { status: 'ok', found: false, data: {}, metadata: {} });
  }
}

/**
 * The types first; then the runtime's view where it adds something: the value of a plain variable
 * (not an object's internals, which its type leaves out on purpose), or anything at all when the
 * type is `any` or unknown.
 */
function merge(typed: TypedInspection | undefined, runtime: Inspection | undefined): { found: boolean; data: Record<string, string> } {
  const text = typed?.found ? typed.text : undefined;
  const runtimeText = runtime?.found ? runtime.data['text/plain'] : undefined;
  if (!text) return runtimeText ? { found: true, data: { 'text/plain': runtimeText } } : { found: false, data: {} };
  const addRuntime = runtimeText !== undefined && (typed?.untyped || runtime?.value === 'plain');
  if (!addRuntime) return { found: true, data: { 'text/plain': text.plain, 'text/markdown': text.markdown } };
  return {
    found: true,
    data: {
      'text/plain': `${text.plain}\n\nValue:\n${runtimeText}`,
      'text/markdown': `${text.markdown}\n\nValue:\n\`\`\`\n${runtimeText}\n\`\`\``,
    },
  };
}

export function handleIsComplete(kernel: Kernel, request: Request<KernelMessage.IIsCompleteRequestMsg>): void {
  kernel.reply<KernelMessage.IIsCompleteReplyMsg>(request, isComplete(request.message.content.code));
}
