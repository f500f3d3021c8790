/**
 * Test helper: a real headless Chromium (Debian's `chromium`) driven by puppeteer-core, with a
 * fresh profile per launch, and screenshots kept as test artefacts under `test-artifacts/`
 * (git-ignored) at the repository root, or under $TEST_ARTIFACTS_DIR.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS_DIR = process.env.TEST_ARTIFACTS_DIR ?? resolve(import.meta.dirname, '..', '..', 'test-artifacts');

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** What a page may load: files, inline data, and servers on the loopback (a page's CDN links, say, are refused). */
const LOCAL = /^(?:file:|data:|blob:|about:|https?:\/\/(?:127\.\d+\.\d+\.\d+|localhost|\[::1\])(?::\d+)?\/)/;

export interface TestBrowser {
  browser: Browser;
  /** A new tab with a fixed viewport that loads only from this machine (see LOCAL); what it logs to its console and failed requests go to `problems`. */
  newPage(options?: { width?: number; height?: number }): Promise<Page>;
  /** Saves a full-page PNG as `<ARTIFACTS_DIR>/<name>.png`; returns its path. */
  screenshot(page: Page, name: string): Promise<string>;
  /** Console errors, page errors and failed requests of every page, for failure messages. */
  problems: string[];
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'tsgather-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    args: [...FLAGS, `--user-data-dir=${profile}`],
    headless: true,
  });
  const problems: string[] = [];
  return {
    browser,
    problems,
    async newPage({ width = 1280, height = 900 } = {}) {
      const page = await browser.newPage();
      await page.setViewport({ width, height });
      await page.setRequestInterception(true);
      page.on('request', (request) => void (LOCAL.test(request.url()) ? request.continue() : request.abort('blockedbyclient')));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error instanceof Error ? error.message : String(error)}`));
      page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`));
      page.on('response', (response) => {
        if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
      });
      return page;
    },
    async screenshot(page, name) {
      await mkdir(ARTIFACTS_DIR, { recursive: true });
      const path = join(ARTIFACTS_DIR, `${name}.png`);
      await page.screenshot({ path: path as `${string}.png`, fullPage: true });
      return path;
    },
    async close() {
      await browser.close().catch(() => browser.process()?.kill('SIGKILL'));
      await rm(profile, { recursive: true, force: true });
    },
  };
}
