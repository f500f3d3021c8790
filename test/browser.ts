/**
 * Test helper: a real headless Chromium (Debian's /usr/bin/chromium, installed by test/setup.sh)
 * driven by puppeteer-core, with a fresh profile; pages load nothing from beyond this machine;
 * screenshots are kept under test-artifacts/ (git-ignored) for a person to look at after a run.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS_DIR = resolve(import.meta.dirname, '..', '..', 'test-artifacts');

/** What a page may load: files, inline data, and servers on the loopback (a page's CDN links, say, are refused). */
const LOCAL = /^(?:file:|data:|blob:|about:|https?:\/\/(?:127\.\d+\.\d+\.\d+|localhost|\[::1\])(?::\d+)?\/)/;

export interface TestBrowser {
  browser: Browser;
  /** A new tab with a 1280×900 viewport that loads only from this machine (see LOCAL). */
  newPage(): Promise<Page>;
  /** Saves a full-page PNG as test-artifacts/<name>.png and returns its path. */
  screenshot(page: Page, name: string): Promise<string>;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'tsgather-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
    ],
  });
  return {
    browser,
    async newPage() {
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 900 });
      await page.setRequestInterception(true);
      page.on('request', (request) => void (LOCAL.test(request.url()) ? request.continue() : request.abort('blockedbyclient')));
      return page;
    },
    async screenshot(page, name) {
      await mkdir(ARTIFACTS_DIR, { recursive: true });
      const path = join(ARTIFACTS_DIR, `${name}.png`);
      await page.screenshot({ path: path as `${string}.png`, fullPage: true });
      return path;
    },
    async close() {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
