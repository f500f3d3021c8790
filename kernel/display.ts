/**
 * The `display` helper in cell scope. Each call sends a display_data and returns a handle whose
 * update() sends update_display_data for the same display_id, formatted the same way;
 * `display.clear({ wait })` sends clear_output.
 */
import type { IMimeBundle, OutputMetadata } from '@jupyterlab/nbformat';
import { randomUUID } from 'node:crypto';
import { MIME_BUNDLE, plainText, renderValue, type Rendered } from './format.js';

export interface ShowMessage {
  data: IMimeBundle;
  metadata: OutputMetadata;
  displayId: string;
  update: boolean;
}

/** clear_output: with wait, the front end clears when the next output arrives (no flicker). */
export interface ClearMessage {
  clear: true;
  wait: boolean;
}

export type DisplayMessage = ShowMessage | ClearMessage;

export interface DisplayOptions {
  display_id?: string;
  metadata?: OutputMetadata;
}

export class DisplayHandle<T = unknown> {
  constructor(
    readonly display_id: string,
    private readonly send: (value: T, update: boolean) => void,
  ) {}

  update(value: T): this {
    this.send(value, true);
    return this;
  }

  /** A handle left as a cell's last expression shows nothing. */
  [MIME_BUNDLE](): Rendered | undefined {
    return undefined;
  }
}

type Formatter<T> = (value: T) => Rendered;
type Show<T> = (value: T, options?: DisplayOptions) => DisplayHandle<T>;

export interface Display extends Show<unknown> {
  html: Show<string>;
  markdown: Show<string>;
  json: Show<unknown>;
  png: Show<Uint8Array | string>;
  svg: Show<string>;
  vegalite: Show<Record<string, unknown>>;
  /** Any mime bundle, e.g. `display.mime({ 'text/csv': '…' })`. */
  mime: Show<IMimeBundle>;
  /** Clears the cell's output; with `wait`, only once the next output arrives. */
  clear(options?: { wait?: boolean }): void;
}

const bundle = (data: IMimeBundle, metadata: OutputMetadata = {}): Rendered => ({ data, metadata });

const VEGA_LITE_MIME = (spec: Record<string, unknown>): string => {
  const version = /vega-lite\/v(\d+)/.exec(String(spec.$schema ?? ''))?.[1] ?? '5';
  return `application/vnd.vegalite.v${version}+json`;
};

/** `<Vega-Lite chart: its title>` (or its description). */
function vegaLiteText(spec: Record<string, unknown>): string {
  const title = typeof spec.title === 'string' ? spec.title : (spec.title as { text?: unknown } | undefined)?.text;
  const name = title ?? spec.description;
  return typeof name === 'string' && name.trim() ? `<Vega-Lite chart: ${name.trim()}>` : '<Vega-Lite chart>';
}

const formatters = {
  any: (value: unknown) => (typeof value === 'string' ? bundle({ 'text/plain': value }) : (renderValue(value) ?? bundle({ 'text/plain': 'undefined' }))),
  html: (html: string) => bundle({ 'text/html': html, 'text/plain': html.replace(/<[^>]*>/g, '').trim() || '<HTML>' }),
  markdown: (markdown: string) => bundle({ 'text/markdown': markdown, 'text/plain': markdown }),
  json: (value: unknown) => bundle({ 'application/json': JSON.parse(JSON.stringify(value ?? null)), 'text/plain': plainText(value) }),
  png: (image: Uint8Array | string) => {
    const base64 = typeof image === 'string' ? image : Buffer.from(image).toString('base64');
    return bundle({ 'image/png': base64, 'text/plain': `<PNG image, ${Math.floor((base64.length * 3) / 4)} bytes>` });
  },
  svg: (svg: string) => bundle({ 'image/svg+xml': svg, 'text/plain': '<SVG image>' }),
  // The kernel adds an SVG picture of the chart (worker-outbox.ts) for front ends without Vega.
  vegalite: (spec: Record<string, unknown>) => bundle({ [VEGA_LITE_MIME(spec)]: spec, 'text/plain': vegaLiteText(spec) } as IMimeBundle),
  mime: (data: IMimeBundle) => bundle(data),
} satisfies Record<string, Formatter<never>>;

export function createDisplay(send: (message: DisplayMessage) => void): Display {
  const show =
    <T>(format: Formatter<T>): Show<T> =>
    (value, options = {}) => {
      const displayId = options.display_id ?? randomUUID();
      const emit = (next: T, update: boolean) => {
        const { data, metadata } = format(next);
        send({ data, metadata: { ...metadata, ...options.metadata }, displayId, update });
      };
      emit(value, false);
      return new DisplayHandle<T>(displayId, emit);
    };
  return Object.assign(show(formatters.any), {
    html: show(formatters.html),
    markdown: show(formatters.markdown),
    json: show(formatters.json),
    png: show(formatters.png),
    svg: show(formatters.svg),
    vegalite: show(formatters.vegalite),
    mime: show(formatters.mime),
    clear: (options: { wait?: boolean } = {}) => send({ clear: true, wait: !!options.wait }),
  });
}
