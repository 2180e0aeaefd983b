// A site bundled by Vite: tests/vite-app imports '@threadline/web' by name
// (a `file:../../npm` dependency, so the package's `exports` map is used as
// from the registry). The test builds it with `vite build`, serves dist/
// from the reference collector, and checks in Chromium that Vite emitted the
// `.wasm` as an asset the page fetches, kept the JavaScript engine as a lazy
// chunk the page does not fetch, and that the app's events arrive.
// Needs `npm ci --prefix tests/vite-app` (and npm/dist built).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { launch } from '../lib/browser.mjs';
import { startCollector } from '../lib/collector.mjs';
import { checkPrerequisites, waitForDistinct, allEvents, ROOT } from './helpers.mjs';

const APP = join(ROOT, 'tests', 'vite-app');
const VITE = join(APP, 'node_modules', 'vite', 'bin', 'vite.js');

function build() {
  if (!existsSync(VITE) || !existsSync(join(APP, 'node_modules', '@threadline', 'web', 'package.json'))) {
    throw new Error('tests/vite-app is not installed: run npm ci --prefix tests/vite-app');
  }
  execFileSync(process.execPath, [VITE, 'build'], { cwd: APP, stdio: ['ignore', 'inherit', 'inherit'] });
  return readdirSync(join(APP, 'dist', 'assets'));
}

test('a Vite-built app loads the wasm asset and its events arrive at the collector', { timeout: 180000 }, async (t) => {
  checkPrerequisites();
  const assets = build();
  const wasm = assets.filter((f) => f.endsWith('.wasm'));
  assert.equal(wasm.length, 1, `Vite emitted the core as one .wasm asset: ${assets}`);
  assert.deepEqual(
    readFileSync(join(APP, 'dist', 'assets', wasm[0])),
    readFileSync(join(ROOT, 'npm', 'dist', 'sdk_wasm_bg.wasm')),
    'the emitted asset is the package wasm, byte for byte',
  );
  const chunks = assets.filter((f) => f.endsWith('.js'));
  const jsEngine = chunks.filter((f) => f.startsWith('sdk_wasm_js-'));
  assert.equal(jsEngine.length, 1, `the JavaScript engine is a chunk of its own: ${chunks}`);
  assert.ok(chunks.length >= 2, 'the app chunk and the lazy engine chunk');

  const collector = await startCollector(['--static-dir', join(APP, 'dist')]);
  let browser;
  t.after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await collector.stop();
    }
  });
  browser = await launch();
  const page = await browser.newPage();
  const errors = [];
  const requested = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => requested.push(new URL(r.url()).pathname));
  await page.goto(`${collector.url}/?endpoint=${encodeURIComponent(collector.url)}`);
  const engine = await page.evaluate(() => window.clientReady);
  assert.equal(engine, 'wasm');
  await page.click('#buy');
  await page.evaluate(() => window.client.flush());

  await waitForDistinct(collector, 2);
  const events = await allEvents(collector);
  const pageView = events.find((e) => e.type === 'page');
  assert.ok(pageView, `the page view arrived: ${JSON.stringify(events)}`);
  assert.equal(pageView.name ?? pageView.properties?.name, 'Vite Home');
  const order = events.find((e) => e.event === 'Order Completed');
  assert.ok(order, 'the click was tracked');
  assert.deepEqual(order.properties, { total: 42, currency: 'EUR' });

  assert.ok(requested.includes(`/assets/${wasm[0]}`), `the page fetched the emitted wasm: ${requested}`);
  assert.ok(!requested.includes(`/assets/${jsEngine[0]}`), 'the JavaScript engine chunk stayed unloaded');
  assert.deepEqual(errors, []);
});
