/**
 * Vega-Lite charts as SVG pictures (`image/svg+xml`, and an <img> of it as `text/markdown`), so
 * that front ends without a Vega renderer (the classic Notebook, nbconvert's HTML, viewers of
 * saved notebooks) show a picture, not `<Vega-Lite chart>`. vega-lite compiles the spec and vega's headless SVG renderer draws it: no browser,
 * no canvas (text is measured by estimate). Both load on first use (about 120 ms); a chart then
 * takes a few ms, about 90 ms for 2,000 marks.
 */
import type { IMimeBundle } from '@jupyterlab/nbformat';

const SVG = 'image/svg+xml';
const VEGA_LITE = /^application\/vnd\.vegalite\.v\d+\+json$/;
/** A chart whose data does not load (a URL that does not answer) stops holding the cell's output back after this. */
const RENDER_TIMEOUT_MS = 5000;
/** Past this, the picture is left out: a front end would choke on it (about 90,000 marks). */
const MAX_SVG_CHARS = 20 * 1024 * 1024;

/** The SVG is also put in the markdown fallback up to this size (base64 makes it a third larger). */
const MAX_MARKDOWN_SVG_CHARS = 4 * 1024 * 1024;

type Modules = [typeof import('vega'), typeof import('vega-lite')];
let modules: Promise<Modules> | undefined;

/** The SVG picture of a Vega-Lite spec; rejects with vega-lite's or vega's error. */
export async function vegaLiteSvg(spec: unknown): Promise<string> {
  const [vega, vegaLite] = await (modules ??= Promise.all([import('vega'), import('vega-lite')]));
  // Quiet: their warnings would land in the cell's stderr (a browser renderer keeps them in its console).
  const logger = vega.logger(vega.None);
  let compiled: ReturnType<typeof vegaLite.compile>['spec'];
  try {
    compiled = vegaLite.compile(spec as Parameters<typeof vegaLite.compile>[0], { logger }).spec;
  } catch (error) {
    throw new Error(`vega-lite could not compile the spec: ${(error as Error).message}`);
  }
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger });
  try {
    return await view.toSVG();
  } catch (error) {
    throw new Error(`vega could not draw the chart: ${(error as Error).message}`);
  } finally {
    view.finalize();
  }
}

/** The bundle's Vega-Lite spec, when it has one and no SVG yet. */
export function vegaLiteSpec(bundle: IMimeBundle | undefined): unknown {
  if (!bundle || bundle[SVG] !== undefined) return undefined;
  const mime = Object.keys(bundle).find((key) => VEGA_LITE.test(key));
  return mime ? bundle[mime] : undefined;
}

/**
 * `bundle` with its Vega-Lite chart also as `image/svg+xml`. Never rejects: when the chart cannot
 * be drawn, the bundle keeps its spec and its `text/plain` says why.
 */
export async function withSvg(bundle: IMimeBundle): Promise<IMimeBundle> {
  const spec = vegaLiteSpec(bundle);
  if (spec === undefined) return bundle;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not drawn within ${RENDER_TIMEOUT_MS} ms`)), RENDER_TIMEOUT_MS);
  });
  try {
    const svg = await Promise.race([vegaLiteSvg(spec), timeout]);
    if (svg.length > MAX_SVG_CHARS) throw new Error(`its SVG would be ${Math.round(svg.length / 1024 / 1024)} MB`);
    const picture: IMimeBundle = { ...bundle, [SVG]: svg };
    if (bundle['text/markdown'] === undefined && bundle['text/html'] === undefined && svg.length <= MAX_MARKDOWN_SVG_CHARS) {
      picture['text/markdown'] = markdownPicture(svg, String(bundle['text/plain'] ?? 'Vega-Lite chart'));
    }
    return picture;
  } catch (error) {
    const plain = typeof bundle['text/plain'] === 'string' ? bundle['text/plain'] : '<Vega-Lite chart>';
    return { ...bundle, 'text/plain': `${plain}\n(no SVG picture of the chart: ${(error as Error).message})` };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The picture as markdown: an <img> with the SVG as a data URL. nbconvert 6.5 (Debian 12's, for
 * one) passes `image/svg+xml` through an HTML cleaner that strips every SVG element, leaving only
 * the chart's text (jupyter/nbconvert#1894, fixed in 7.7), but renders markdown as it is. Front
 * ends that draw Vega-Lite (JupyterLab, Notebook 7) rank it above markdown and still show the
 * live chart; the classic Notebook, which ranks markdown above SVG, shows this picture.
 */
function markdownPicture(svg: string, alt: string): string {
  const text = (alt.split('\n')[0] ?? '').replace(/^<|>$/g, '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<img src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}" alt="${text}">`;
}
