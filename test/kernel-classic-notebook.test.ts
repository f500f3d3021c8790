/**
 * The kernel in the classic Jupyter Notebook, as a person uses it: a real Notebook server and a
 * real headless Chromium. Screenshots go to test-artifacts/ (see test/browser.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HTTPResponse, Page } from 'puppeteer-core';
import { launchBrowser, type TestBrowser } from './browser.js';
import { startClassicNotebook, type ClassicNotebook } from './classic-notebook.js';

const WAIT_MS = 60_000;

describe('kernel in the classic Notebook (headless Chromium)', { timeout: 240_000 }, () => {
  let notebook: ClassicNotebook;
  let browser: TestBrowser;

  before(async () => {
    [notebook, browser] = await Promise.all([startClassicNotebook(), launchBrowser()]);
  });

  after(async () => {
    await browser?.close();
    await notebook?.stop();
  });

  /** Opens a new notebook for our kernel and waits until the kernel is connected and idle. */
  async function openNotebook(name: string): Promise<{ page: Page; responses: HTTPResponse[] }> {
    await notebook.newNotebook(name);
    const page = await browser.newPage();
    const responses: HTTPResponse[] = [];
    page.on('response', (response) => responses.push(response));
    await page.goto(notebook.notebookUrl(name), { waitUntil: 'load' });
    await page.waitForFunction(
      () => {
        const kernel = (window as unknown as { Jupyter?: { notebook?: { kernel?: { info_reply?: { status?: string } } } } }).Jupyter?.notebook?.kernel;
        return kernel?.info_reply?.status === 'ok' && document.querySelector('#kernel_indicator_icon.kernel_idle_icon') !== null;
      },
      { timeout: WAIT_MS },
    );
    return { page, responses };
  }

  test('the kernel logo loads and TypeScript is highlighted in the TypeScript mode', async () => {
    const { page, responses } = await openNotebook('identity.ipynb');
    await page.evaluate(() => {
      const jupyter = (window as unknown as { Jupyter: { notebook: { get_cell(i: number): { set_text(text: string): void } } } }).Jupyter;
      jupyter.notebook.get_cell(0).set_text('interface Point { x: number }\nconst origin: Point = { x: await Promise.resolve(0) };');
    });
    // CodeMirror styles tokens asynchronously; `number` as a type is styled only in TypeScript mode
    await page.waitForSelector('.CodeMirror .cm-type', { timeout: WAIT_MS });
    const editor = await page.evaluate(() => {
      const spans = (selector: string) => [...document.querySelectorAll(`.CodeMirror-code ${selector}`)].map((span) => span.textContent);
      const logo = document.querySelector<HTMLImageElement>('img.current_kernel_logo');
      const cm = (window as unknown as { Jupyter: { notebook: { get_cell(i: number): { code_mirror: { getMode(): { name: string } } } } } }).Jupyter.notebook.get_cell(0).code_mirror;
      return {
        mode: cm.getMode().name,
        keywords: spans('.cm-keyword'),
        types: spans('.cm-type'),
        logo: logo && { src: logo.src, width: logo.naturalWidth, visible: logo.offsetParent !== null },
      };
    });
    await browser.screenshot(page, 'classic-notebook-logo-and-highlighting');

    assert.equal(editor.mode, 'javascript');
    assert.ok(editor.keywords.includes('interface') && editor.keywords.includes('const') && editor.keywords.includes('await'), `keywords: ${editor.keywords}`);
    assert.ok(editor.types.includes('number') && editor.types.includes('Point'), `types: ${editor.types}`);
    assert.ok(editor.logo, 'the page has a kernel logo image');
    assert.match(editor.logo.src, /\/kernelspecs\/tsgather\/logo-64x64\.png$/);
    assert.equal(editor.logo.width, 64);
    assert.equal(editor.logo.visible, true);
    const logoResponse = responses.find((response) => response.url() === editor.logo!.src);
    assert.equal(logoResponse?.status(), 200);
    assert.equal(logoResponse?.headers()['content-type'], 'image/png');
    const modeFailures = responses.filter((response) => /codemirror\/mode/.test(response.url()) && response.status() >= 400).map((response) => response.url());
    assert.deepEqual(modeFailures, [], 'every CodeMirror mode file loads');
    await page.close();
  });

  test('await input(): the answer typed into the input box finishes the cell', async () => {
    const { page } = await openNotebook('input.ipynb');
    await page.evaluate(() => {
      const jupyter = (window as unknown as { Jupyter: { notebook: { get_cell(i: number): { set_text(text: string): void; execute(): void } } } }).Jupyter;
      const cell = jupyter.notebook.get_cell(0);
      cell.set_text('const who = await input("Your name? ");\n`hello ${who}`');
      cell.execute();
    });
    const box = await page.waitForSelector('input.raw_input', { visible: true, timeout: WAIT_MS });
    assert.equal(await page.$eval('.raw_input_prompt', (prompt) => prompt.textContent), 'Your name? ');
    await box!.type('Ada');
    await browser.screenshot(page, 'classic-notebook-input-typed');
    await box!.press('Enter');
    await page.waitForFunction(() => document.querySelector('.output_area .output_result')?.textContent?.includes('hello Ada'), { timeout: WAIT_MS });
    await page.waitForFunction(() => document.querySelector('.input_prompt')?.textContent?.replace(/\s/g, '') === 'In[1]:', { timeout: WAIT_MS });
    await browser.screenshot(page, 'classic-notebook-input-answered');
    const outputs = await page.$$eval('.output_area', (areas) => areas.map((area) => area.textContent?.replace(/\s+/g, ' ').trim()));
    assert.deepEqual(outputs, ['Your name? Ada', "Out[1]:'hello Ada'"]);
    await page.close();
  });

  test('`Math.max?` opens the pager with what the kernel knows about Math.max', async () => {
    const { page } = await openNotebook('help.ipynb');
    await page.evaluate(() => {
      const jupyter = (window as unknown as { Jupyter: { notebook: { get_cell(i: number): { set_text(text: string): void; execute(): void } } } }).Jupyter;
      const cell = jupyter.notebook.get_cell(0);
      cell.set_text('Math.max?');
      cell.execute();
    });
    await page.waitForFunction(() => /Math\.max/.test(document.querySelector('#pager-container')?.textContent ?? ''), { timeout: WAIT_MS });
    await page.waitForFunction(() => document.querySelector('.input_prompt')?.textContent?.replace(/\s/g, '') === 'In[1]:', { timeout: WAIT_MS });
    // the pager slides up with a jQuery animation: the screenshot waits for it to finish
    await page.waitForFunction(() => !(window as unknown as { $: (selector: string) => { is(state: string): boolean } }).$('#pager').is(':animated'), { timeout: WAIT_MS });
    await browser.screenshot(page, 'classic-notebook-help-pager');
    const pager = await page.$eval('#pager', (element) => ({ height: (element as HTMLElement).offsetHeight, text: element.textContent ?? '' }));
    assert.ok(pager.height > 50, `the pager is open (${pager.height} px high)`);
    assert.match(pager.text, /Math\.max: function[\s\S]*function max\(\) \{ \[native code\] \}/);
    await page.close();
  });
});
