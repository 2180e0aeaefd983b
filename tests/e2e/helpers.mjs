// Shared plumbing of the end-to-end delivery tests: one collector (serving
// the npm package at /npm/ and tests/e2e/pages at /) and one Chromium per
// test, torn down by the test's `after` hook.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { launch } from '../lib/browser.mjs';
import { startCollector, waitFor, ROOT } from '../lib/collector.mjs';

export { waitFor, ROOT };

export const PAGES = join(dirname(fileURLToPath(import.meta.url)), 'pages');
export const DIST = join(ROOT, 'npm', 'dist');
export const WRITE_KEY = 'demo-write-key';

/** Throws a clear error when the npm build or the collector binary is missing. */
export function checkPrerequisites() {
  const missing = [];
  for (const f of ['index.js', 'sdk_wasm.js', 'sdk_wasm_bg.wasm']) {
    if (!existsSync(join(DIST, f))) missing.push(`npm/dist/${f} (run npm/scripts/build.sh)`);
  }
  const target = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
  const bin = process.env.THREADLINE_COLLECTOR || join(target, 'debug', 'threadline-collector');
  if (!existsSync(bin)) missing.push(`${bin} (run cargo build -p threadline-collector)`);
  if (missing.length) throw new Error(`e2e prerequisites missing:\n  ${missing.join('\n  ')}`);
}

/** The SDK's shipped files (what a site loads). */
export function distFiles() {
  return readdirSync(DIST)
    .filter((f) => /\.(js|mjs|wasm)$/.test(f))
    .map((f) => ({ name: f, bytes: readFileSync(join(DIST, f)) }));
}

/**
 * Starts a collector (with `collectorArgs`) and a browser for test `t`
 * (`browserOptions` go to tests/lib/browser.mjs `launch`), and registers
 * their teardown. `open(cfg)` opens the test page in `context`
 * (or a given one) and, with a `cfg`, waits for the page's client.
 */
export async function setup(t, collectorArgs = [], { browserOptions } = {}) {
  checkPrerequisites();
  const collector = await startCollector(['--static-dir', PAGES, ...collectorArgs]);
  let browser;
  t.after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await collector.stop();
    }
  });
  browser = await launch(browserOptions);
  const context = await browser.newContext();

  /** Opens /sdk.html; `cfg` (SDK options) makes the page create its client at load. */
  async function open(cfg, { ctx = context, initScript } = {}) {
    const page = await ctx.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(String(e && e.stack ? e.stack : e)));
    page.on('console', (m) => {
      // The browser logs every failed request (injected 5xx, offline, the
      // favicon's 404) as a console error; those are not the page's errors.
      if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) page.errors.push(`console.error: ${m.text()}`);
    });
    if (initScript) await page.addInitScript(initScript);
    await gotoSdk(page, collector.url, cfg);
    return page;
  }
  return { collector, browser, context, open };
}

/** Navigates `page` to the test page and waits for its client (if `cfg`). */
export async function gotoSdk(page, url, cfg) {
  const hash = cfg ? `#cfg=${encodeURIComponent(JSON.stringify(cfg))}` : '';
  await page.goto(`${url}/sdk.html${hash}`);
  await waitForClient(page);
}

/** Waits until the page's module ran and its client (if any) is created. */
export async function waitForClient(page) {
  await page.waitForFunction(() => window.sdkLoaded === true);
  await page.evaluate(() => window.clientReady);
}

/** Every stored event, in receive order. */
export async function allEvents(collector) {
  return collector.events('limit=100000');
}

/** Polls the collector until it stores `n` distinct events. */
export async function waitForDistinct(collector, n, ms = 60000, what = `${n} distinct events at the collector`) {
  let last;
  try {
    return await waitFor(async () => {
      last = await collector.stats();
      return last.distinct >= n ? last : false;
    }, ms, what);
  } catch (e) {
    e.message += ` (last stats: ${JSON.stringify(last)})`;
    throw e;
  }
}

/** The page's client counters. */
export function clientStats(page) {
  return page.evaluate(() => window.client.stats());
}

/** A short summary of the collector's counters for the test log. */
export function summary(stats) {
  const { received, distinct, accepted, duplicates, rejected, requests, gzipRequests, beaconRequests, faults, statusCounts } = stats;
  return JSON.stringify({ received, distinct, accepted, duplicates, rejected, requests, gzipRequests, beaconRequests, faults, statusCounts });
}
