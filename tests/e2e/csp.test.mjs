// Content Security Policy: the page (tests/e2e/pages/csp) and the npm
// package are served by a small server here that sends a `Content-Security-
// Policy` header; events go to the reference collector on another origin.
//   - `script-src 'self'` (no 'wasm-unsafe-eval'): the browser refuses to
//     compile WebAssembly; the SDK falls back to the wasm2js build of the core
//     (`client.engine === 'js'`), never fetches the `.wasm`, and events
//     arrive, identical to the wasm engine's (hashed ids included).
//   - with 'wasm-unsafe-eval': the wasm engine runs and the JavaScript one is
//     never fetched.
//   - the inline entry (`@threadline/web/inline`) needs no `.wasm` file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, normalize, extname } from 'node:path';

import { launch } from '../lib/browser.mjs';
import { startCollector } from '../lib/collector.mjs';
import { checkPrerequisites, waitForDistinct, allEvents, PAGES, DIST } from './helpers.mjs';

const STRICT = "default-src 'none'; script-src 'self'; connect-src 'self' COLLECTOR; base-uri 'none'; form-action 'none'";
const WASM_OK = STRICT.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'");
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm' };

/**
 * Serves /npm/dist/* from npm/dist and everything else from pages/csp, each
 * response with the policy `csp()` returns at that moment.
 */
async function cspServer(csp) {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = path.startsWith('/npm/dist/') ? join(DIST, path.slice('/npm/dist/'.length)) : join(PAGES, 'csp', path === '/' ? 'index.html' : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream', 'content-security-policy': csp(), 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-security-policy': csp() });
      res.end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

async function setupCsp(t) {
  checkPrerequisites();
  const collector = await startCollector();
  let policy = STRICT;
  const site = await cspServer(() => policy.replace('COLLECTOR', collector.url));
  let browser;
  t.after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await site.close();
      await collector.stop();
    }
  });
  browser = await launch();

  /** Opens the page under `csp` with `entry`; resolves when its client exists. */
  async function open(csp, entry = 'index') {
    policy = csp;
    const context = await browser.newContext();
    const page = await context.newPage();
    page.errors = [];
    page.requested = [];
    page.on('pageerror', (e) => page.errors.push(String(e && e.stack ? e.stack : e)));
    page.on('request', (r) => page.requested.push(new URL(r.url()).pathname));
    await page.goto(`${site.url}/#entry=${entry}&endpoint=${encodeURIComponent(collector.url)}`);
    const engine = await page.evaluate(() => window.clientReady.catch(() => null));
    const loadError = await page.evaluate(() => window.loadError);
    assert.ok(engine, `the client was created (${loadError})`);
    return { page, engine };
  }
  return { collector, open };
}

/** The same story on every engine: an identify with hashed ids, a page, tracks. */
function story(page, tag) {
  return page.evaluate(async (tag) => {
    const c = window.client;
    const ids = [
      c.identify('user-1', { plan: 'pro', tag }, { ids: { email: ' Shopper@Example.COM ', crmId: 'crm-9' } }),
      c.page('Home', { tag }),
      c.track('Product Viewed', { productId: 'slacks-01', price: 49.5, tags: ['a', 'b'], tag, nested: { deep: [1, 2.25, null, true] } }),
      c.track('Order Completed', { total: 1234567.89, tag }),
    ];
    await c.flush();
    return { ids, engine: c.engine, stats: c.stats() };
  }, tag);
}

/** What must be equal whichever engine produced an event. */
function comparable(e) {
  return {
    type: e.type,
    event: e.event,
    name: e.name,
    userId: e.userId,
    properties: e.properties,
    traits: e.traits,
    externalIds: e.context?.externalIds,
    library: e.context?.library,
  };
}

test('a CSP without wasm-unsafe-eval gets the wasm2js engine; with it, the wasm engine; both send the same events', { timeout: 90000 }, async (t) => {
  const { collector, open } = await setupCsp(t);

  const strict = await open(STRICT);
  assert.equal(strict.engine, 'js', 'the JavaScript engine runs when WebAssembly is refused');
  const js = await story(strict.page, 'js');
  assert.equal(js.engine, 'js');
  assert.ok(js.ids.every((id) => typeof id === 'string' && id.length > 0), `every call returned a messageId: ${js.ids}`);
  assert.equal(js.stats.contained, 0, 'no internal error was contained');
  const violations = await strict.page.evaluate(() => window.violations);
  assert.ok(violations.some((v) => v.blocked === 'wasm-eval' || /script-src/.test(v.directive)), `the browser did refuse WebAssembly: ${JSON.stringify(violations)}`);
  assert.ok(strict.page.requested.some((p) => p.endsWith('/sdk_wasm_js.js')), 'the JavaScript engine was loaded');
  assert.ok(!strict.page.requested.some((p) => p.endsWith('.wasm')), `no .wasm was fetched under the strict policy: ${strict.page.requested}`);
  assert.deepEqual(strict.page.errors, [], 'the page saw no exception');

  const relaxed = await open(WASM_OK);
  assert.equal(relaxed.engine, 'wasm', 'the wasm engine runs when the policy allows it');
  const wasm = await story(relaxed.page, 'wasm');
  assert.deepEqual(await relaxed.page.evaluate(() => window.violations), [], 'no violation under wasm-unsafe-eval');
  assert.ok(relaxed.page.requested.some((p) => p.endsWith('/sdk_wasm_bg.wasm')), 'the .wasm was fetched');
  assert.ok(!relaxed.page.requested.some((p) => p.endsWith('/sdk_wasm_js.js')), 'the JavaScript engine was not fetched');
  assert.deepEqual(relaxed.page.errors, []);

  await waitForDistinct(collector, 8);
  const events = await allEvents(collector);
  const byId = new Map(events.map((e) => [e.messageId, e]));
  for (const id of [...js.ids, ...wasm.ids]) assert.ok(byId.has(id), `event ${id} arrived at the collector`);
  const norm = (ids, tag) =>
    ids.map((id) => {
      const c = comparable(byId.get(id));
      return JSON.parse(JSON.stringify(c).replaceAll(`"${tag}"`, '"TAG"'));
    });
  const fromJs = norm(js.ids, 'js');
  assert.deepEqual(fromJs, norm(wasm.ids, 'wasm'), 'both engines produce the same events');
  const identify = byId.get(js.ids[0]);
  const ids = identify.context?.externalIds;
  assert.match(JSON.stringify(ids), /[0-9a-f]{64}/, `the email left hashed (SHA-256 in the JavaScript engine too): ${JSON.stringify(ids)}`);
  assert.equal(byId.get(js.ids[3]).properties.total, 1234567.89);
});

test('the inline entry needs no .wasm file, under either policy', { timeout: 90000 }, async (t) => {
  const { collector, open } = await setupCsp(t);

  const relaxed = await open(WASM_OK, 'inline');
  assert.equal(relaxed.engine, 'wasm');
  const a = await story(relaxed.page, 'inline-wasm');
  assert.ok(!relaxed.page.requested.some((p) => p.endsWith('.wasm')), `no .wasm was fetched: ${relaxed.page.requested}`);
  assert.ok(relaxed.page.requested.some((p) => p.endsWith('/sdk_wasm_inline.js')), 'the inlined wasm was loaded');
  assert.deepEqual(relaxed.page.errors, []);

  const strict = await open(STRICT, 'inline');
  assert.equal(strict.engine, 'js', 'the inline entry falls back too');
  const b = await story(strict.page, 'inline-js');
  assert.deepEqual(strict.page.errors, []);

  await waitForDistinct(collector, 8);
  const ids = new Set((await allEvents(collector)).map((e) => e.messageId));
  for (const id of [...a.ids, ...b.ids]) assert.ok(ids.has(id), `event ${id} arrived`);
});

test('the tag-manager script finds the JavaScript engine beside itself under a strict CSP', { timeout: 90000 }, async (t) => {
  const { collector, open } = await setupCsp(t);
  const strict = await open(STRICT, 'iife');
  assert.equal(strict.engine, 'js', 'the JavaScript engine runs when WebAssembly is refused');
  const r = await story(strict.page, 'iife-js');
  assert.ok(strict.page.requested.includes('/npm/dist/sdk_wasm_js.js'), `imported beside threadline.js, not beside the page: ${strict.page.requested}`);
  assert.ok(!strict.page.requested.some((p) => p.endsWith('.wasm')), 'no .wasm was fetched');
  assert.deepEqual(strict.page.errors, [], 'the page saw no exception');

  const relaxed = await open(WASM_OK, 'iife');
  assert.equal(relaxed.engine, 'wasm');
  assert.ok(relaxed.page.requested.includes('/npm/dist/sdk_wasm_bg.wasm'), 'the .wasm beside the script');

  await waitForDistinct(collector, 4);
  const ids = new Set((await allEvents(collector)).map((e) => e.messageId));
  for (const id of r.ids) assert.ok(ids.has(id), `event ${id} arrived`);
});
