// What every browser test file shares: headless Chromium (Debian's, driven by playwright-core)
// against the pages built by `cargo xtask web` and served by `cargo xtask serve`, and a page
// opener that collects console errors. Screenshots go to test-output/browser/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const shots = join(root, 'test-output', 'browser');
const chromiumPath = process.env.JEM_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu'];

// Starts `cargo xtask serve` on a free port and Chromium. Resolves to `{ url, browser, close }`.
export async function start() {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: install Debian's chromium (apt-get install chromium) or set JEM_CHROMIUM`);
  assert.ok(process.env.JEM_XTASK, 'run through `cargo xtask test` (it sets JEM_XTASK)');
  mkdirSync(shots, { recursive: true });
  const server = spawn(process.env.JEM_XTASK, ['serve', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
      if (m) resolve(m[0]);
    });
    server.on('exit', (code) => reject(new Error(`xtask serve exited (${code})`)));
  });
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ARGS, headless: true });
  return {
    url,
    browser,
    async close() {
      await browser.close();
      server.kill();
    },
  };
}

// A page at `path` (relative to the served root) with console errors and uncaught exceptions
// collected in `errors`; waits for `body[data-ready]` and asserts it is 'true'.
export async function open(browser, url, path, { viewport = { width: 1400, height: 1000 } } = {}) {
  const page = await browser.newPage({ viewport });
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  const t0 = Date.now();
  await page.goto(`${url}${path}`);
  await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
  const loadMs = Date.now() - t0;
  assert.equal(await page.getAttribute('body', 'data-ready'), 'true', `${path}: ${errors.join('; ')}`);
  return { page, errors, loadMs };
}
