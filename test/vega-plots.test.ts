/**
 * Plots everywhere: every Vega-Lite output of the kernel also carries an SVG picture, so that front
 * ends without a Vega renderer show the chart. Checked through the real kernel (the MIME bundles,
 * their SVG parsed and counted in Chromium), in nbconvert's HTML and in the classic Notebook served
 * by a real server, both looked at by headless Chromium (screenshots in test-artifacts/).
 */
import type { KernelMessage } from '@jupyterlab/services';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'puppeteer-core';
import { KernelClient } from '../kernel/client.js';
import { DISPLAY_NAME, KERNEL_NAME } from '../kernel/install.js';
import { launchKernel, type LaunchedKernel } from '../kernel/launch.js';
import { runNotebook } from '../kernel/run-notebook.js';
import type { FromWorker } from '../kernel/worker-messages.js';
import { WorkerOutbox } from '../kernel/worker-outbox.js';
import { launchBrowser, type TestBrowser } from './browser.js';
import { startClassicNotebook, type ClassicNotebook } from './classic-notebook.js';
import { runProgram } from './cli-helpers.js';
import { codeNotebook } from './helpers.js';

const VEGA_LITE = 'application/vnd.vegalite.v5+json';
const SVG = 'image/svg+xml';

/** The cells: a chart between two prints, a chart updated in place, plotDurations as a value, and a spec vega-lite cannot compile. */
const CELLS = [
  `const bars = (n: number) => ({ $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: n + ' bars', data: { values: Array.from({ length: n }, (_, i) => ({ k: 'k' + i, v: i + 1 })) }, mark: 'bar', encoding: { x: { field: 'k', type: 'nominal' }, y: { field: 'v', type: 'quantitative' } } });
console.log('before');
display.vegalite(bars(3));
console.log('after');`,
  'const grow = display.vegalite(bars(1));\ngrow.update(bars(4));',
  `const sg = await spawnScatterGather([], { workers: 2 });
await sg.define('nap', (ms: number) => { const end = Date.now() + ms; while (Date.now() < end); return ms; });
const results = await sg.mapResults('nap', [5, 10, 5, 20, 5, 15, 10, 5].map((ms) => [[ms]]));
await sg.close();
sg.plotDurations(results)`,
  "display.vegalite({ mark: 'nonsense' })",
];
/** Bars of the pictures the cells leave, in order: 3, then 4 (the update), then one per job. */
const EXPECTED_MARKS = [3, 4, 8];

interface ParsedChart {
  parseError: boolean;
  root: string;
  width: number;
  /** Paths of the first rect mark (the bars). */
  marks: number;
}

/** In the page: parses an SVG text as the browser does. */
function parseChart(page: Page, svg: string): Promise<ParsedChart> {
  return page.evaluate((text: string) => {
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const group = doc.querySelector('g.mark-rect.role-mark');
    return {
      parseError: doc.querySelector('parsererror') !== null,
      root: doc.documentElement.nodeName,
      width: Number(doc.documentElement.getAttribute('width')),
      marks: group ? group.querySelectorAll(':scope > path').length : 0,
    };
  }, svg);
}

interface ShownPicture {
  loaded: boolean;
  width: number;
  marks: number;
  /** Pixels painted in the bars' blue (#4c78a8), once the image is drawn on a canvas. */
  bluePixels: number;
}

/** In the page: every SVG picture shown as an <img>, drawn by the browser and measured. */
function shownPictures(page: Page): Promise<ShownPicture[]> {
  return page.evaluate(async () => {
    const images = [...document.querySelectorAll<HTMLImageElement>('img[src^="data:image/svg+xml;base64,"]')];
    return Promise.all(
      images.map(async (image) => {
        await image.decode().catch(() => undefined);
        const doc = new DOMParser().parseFromString(atob(image.src.split(',')[1]!), 'image/svg+xml');
        const group = doc.querySelector('g.mark-rect.role-mark');
        const canvas = document.createElement('canvas');
        canvas.width = image.naturalWidth;
        canvas.height = image.naturalHeight;
        let bluePixels = 0;
        if (canvas.width > 0 && canvas.height > 0) {
          const context = canvas.getContext('2d')!;
          context.drawImage(image, 0, 0);
          const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
          for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i]! - 0x4c) < 8 && Math.abs(data[i + 1]! - 0x78) < 8 && Math.abs(data[i + 2]! - 0xa8) < 8) bluePixels++;
        }
        return { loaded: image.complete && image.naturalWidth > 0, width: image.naturalWidth, marks: group ? group.querySelectorAll(':scope > path').length : 0, bluePixels };
      }),
    );
  });
}

function assertPictures(pictures: ShownPicture[], where: string): void {
  assert.deepEqual(
    pictures.map((p) => p.marks),
    EXPECTED_MARKS,
    `${where}: the charts' bars`,
  );
  for (const picture of pictures) {
    assert.ok(picture.loaded && picture.width > 50, `${where}: the browser drew the picture (${JSON.stringify(picture)})`);
    assert.ok(picture.bluePixels > 100, `${where}: bars painted (${picture.bluePixels} blue pixels)`);
  }
}

let dir: string;
let browser: TestBrowser;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgather-vega-'));
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('Vega-Lite outputs through the kernel', { timeout: 120_000 }, () => {
  let kernel: LaunchedKernel;
  let client: KernelClient;
  let page: Page;
  before(async () => {
    kernel = await launchKernel();
    client = KernelClient.connect(kernel.info);
    await client.waitForReady();
    page = await browser.newPage();
  });
  after(async () => {
    client?.close();
    await kernel?.kill();
  });

  const bundles = (iopub: KernelMessage.IIOPubMessage[], type: string) =>
    iopub.filter((m) => m.header.msg_type === type).map((m) => (m as KernelMessage.IDisplayDataMsg).content.data as Record<string, unknown>);

  test('each chart carries a valid SVG with its marks, in its place among the outputs', async (t) => {
    const started = performance.now();
    const first = await client.execute(CELLS[0]!);
    const firstMs = performance.now() - started;
    assert.deepEqual(
      first.iopub
        .filter((m) => m.header.msg_type !== 'execute_input' && m.header.msg_type !== 'status')
        .map((m) => (m.header.msg_type === 'stream' ? (m as KernelMessage.IStreamMsg).content.text : m.header.msg_type)),
      ['before\n', 'display_data', 'after\n'],
      'the picture keeps the chart in its place',
    );
    const [bars] = bundles(first.iopub, 'display_data');
    assert.deepEqual(Object.keys(bars!).sort(), [VEGA_LITE, SVG, 'text/markdown', 'text/plain'].sort());
    assert.equal(bars!['text/plain'], '<Vega-Lite chart: 3 bars>');
    assert.deepEqual(await parseChart(page, String(bars![SVG])), { parseError: false, root: 'svg', width: Number(/width="(\d+)"/.exec(String(bars![SVG]))![1]), marks: 3 });
    assert.match(String(bars!['text/markdown']), /^<img src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+" alt="Vega-Lite chart: 3 bars">$/);

    const again = performance.now();
    await client.execute('display.vegalite(bars(3))');
    t.diagnostic(`a cell showing a 3-bar chart: ${firstMs.toFixed(0)} ms the first time (vega loads), ${(performance.now() - again).toFixed(0)} ms after`);

    const grown = await client.execute(CELLS[1]!);
    assert.equal((await parseChart(page, String(bundles(grown.iopub, 'display_data')[0]![SVG]))).marks, 1);
    const [update] = bundles(grown.iopub, 'update_display_data');
    assert.equal((await parseChart(page, String(update![SVG]))).marks, 4, 'an updated chart gets a new picture');

    const durations = await client.execute(CELLS[2]!);
    const [chart] = bundles(durations.iopub, 'execute_result');
    assert.ok(chart![VEGA_LITE], 'still the Vega-Lite spec');
    assert.match(String(chart!['text/plain']), /^<Vega-Lite chart: durations of 8 job\(s\)/);
    const parsed = await parseChart(page, String(chart![SVG]));
    assert.equal(parsed.parseError, false);
    assert.equal(parsed.marks, 8, 'one bar per job on the timeline');

    const broken = await client.execute(CELLS[3]!);
    const [kept] = bundles(broken.iopub, 'display_data');
    assert.deepEqual(kept![VEGA_LITE], { mark: 'nonsense' });
    assert.equal(kept![SVG], undefined);
    assert.match(String(kept!['text/plain']), /^<Vega-Lite chart>\n\(no SVG picture of the chart: vega-lite could not compile the spec: .+\)$/);
    assert.equal(broken.reply.content.status, 'ok', 'a chart that cannot be drawn is no error of the cell');
  });
});

test("the cell worker's outbox keeps outputs in order behind a chart being drawn; an interrupt's acknowledgement does not wait", async () => {
  const posted: FromWorker[] = [];
  let replied!: () => void;
  const reply = new Promise<void>((resolve) => (replied = resolve));
  const outbox = new WorkerOutbox((message) => {
    posted.push(message);
    if (message.type === 'reply') replied();
  });
  const spec = { data: { values: [{ x: 1 }, { x: 2 }] }, mark: 'bar', encoding: { x: { field: 'x', type: 'ordinal' } } };
  outbox.send({ type: 'stream', name: 'stdout', text: 'a' });
  outbox.send({ type: 'display', data: { [VEGA_LITE]: spec, 'text/plain': 'chart' }, metadata: {}, displayId: 'd', update: false });
  outbox.send({ type: 'stream', name: 'stdout', text: 'b' });
  outbox.send({ type: 'interrupted', execId: 1 });
  outbox.send({ type: 'reply', id: 1, value: { status: 'ok', data: { 'text/plain': '1' } } });
  const shown = () => posted.map((m) => (m.type === 'stream' ? m.text : m.type === 'display' && 'data' in m ? `display${m.data[SVG] ? ' with SVG' : ''}` : m.type));
  assert.deepEqual(shown(), ['a', 'interrupted']);
  await reply;
  assert.deepEqual(shown(), ['a', 'interrupted', 'display with SVG', 'b', 'reply']);
});

describe('Vega-Lite outputs in nbconvert HTML and the classic Notebook', { timeout: 180_000 }, () => {
  test("nbconvert's HTML of an executed notebook shows each chart as a picture", async () => {
    const input = join(dir, 'charts.ipynb');
    await writeFile(input, JSON.stringify(codeNotebook(...CELLS)));
    const run = await runNotebook(input);
    assert.deepEqual(run.errors, []);
    const converted = await runProgram('jupyter', ['nbconvert', '--to', 'html', run.outputPath, '--output-dir', dir]);
    assert.equal(converted.code, 0, converted.stderr);
    const htmlPath = join(dir, 'charts.out.html');
    const html = await readFile(htmlPath, 'utf8');
    assert.equal((html.match(/<img src="data:image\/svg\+xml;base64,/g) ?? []).length, 3);
    assert.doesNotMatch(html, /&lt;Vega-Lite chart: 3 bars&gt;/, 'the picture, not the text, is shown');

    const page = await browser.newPage();
    await page.goto(pathToFileURL(htmlPath).href, { waitUntil: 'load' });
    assertPictures(await shownPictures(page), 'nbconvert HTML');
    await browser.screenshot(page, 'nbconvert-vega-lite');
    await page.close();
  });

  test('the classic Notebook shows each chart as a picture when the cells run', async () => {
    let notebook: ClassicNotebook | undefined;
    try {
      notebook = await startClassicNotebook();
      const content = codeNotebook(...CELLS);
      content.metadata.kernelspec = { name: KERNEL_NAME, display_name: DISPLAY_NAME, language: 'typescript' };
      await writeFile(join(notebook.root, 'charts.ipynb'), JSON.stringify(content));
      const page = await browser.newPage();
      await page.goto(notebook.urlOf('charts.ipynb'), { waitUntil: 'load' });
      await page.waitForFunction(
        () => {
          const jupyter = (globalThis as { Jupyter?: { notebook?: { kernel?: { is_connected(): boolean } } } }).Jupyter;
          return jupyter?.notebook?.kernel?.is_connected() === true;
        },
        { timeout: 60_000 },
      );
      await page.evaluate(() => (globalThis as unknown as { Jupyter: { notebook: { execute_all_cells(): void } } }).Jupyter.notebook.execute_all_cells());
      // Done when every cell has run and the last one (the spec that cannot be drawn) shows its output.
      await page.waitForFunction(
        () => {
          type Cell = { input_prompt_number?: unknown; output_area: { outputs: unknown[] } };
          const cells = (globalThis as unknown as { Jupyter: { notebook: { get_cells(): Cell[] } } }).Jupyter.notebook.get_cells();
          return cells.every((cell) => typeof cell.input_prompt_number === 'number') && cells.at(-1)!.output_area.outputs.length > 0;
        },
        { timeout: 90_000 },
      );
      assertPictures(await shownPictures(page), 'classic Notebook');
      assert.match((await page.evaluate(() => document.querySelector('.cell:last-child .output_area')?.textContent)) ?? '', /no SVG picture of the chart: vega-lite could not compile/);
      const shownText = await page.evaluate(() => [...document.querySelectorAll('.output_area')].map((area) => area.textContent).join('\n'));
      assert.doesNotMatch(shownText, /<Vega-Lite chart: 3 bars>/, 'the picture, not the text, is shown');
      await page.setViewport({ width: 1280, height: 2200 }); // the notebook scrolls inside its own pane: make room for every cell
      await browser.screenshot(page, 'classic-notebook-vega-lite');
      await page.close();
    } finally {
      await notebook?.stop();
    }
  });
});
