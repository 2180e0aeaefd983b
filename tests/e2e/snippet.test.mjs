// The tag-manager build (npm/dist/threadline.js) behind the inline snippet
// of docs/tag-managers.md, in Chromium against the collector: the command
// queue replayed in order once the script arrives, then calls straight
// through; the script loaded twice (one client); the GTM dataLayer bridge;
// a core that cannot load (the page never sees an exception); decide with a
// callback through the queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { setup as setupE2e, waitFor, waitForDistinct, allEvents, ROOT, PAGES, DIST } from './helpers.mjs';

const FAST = { batch: { maxAgeMs: 200 } };
const SHOP = readFileSync(join(ROOT, 'tests', 'artifacts', 'shop.json'), 'utf8');
const SCRIPT = '**/npm/dist/threadline.js';
const WASM = '**/npm/dist/sdk_wasm_bg.wasm';

/**
 * Opens a snippet page whose inline script first calls `beforeLoad` (a
 * function source run in the page, before the async script can arrive).
 * Collects page errors and console warnings.
 */
async function openSnippet(context, url, beforeLoad, { path = '/snippet/index.html', headers, prepare } = {}) {
  const page = await context.newPage();
  if (prepare) await prepare(page);
  page.errors = [];
  page.warnings = [];
  page.on('pageerror', (e) => page.errors.push(String(e && e.message ? e.message : e)));
  page.on('console', (m) => {
    if (m.type() === 'warning') page.warnings.push(m.text());
  });
  if (beforeLoad) await page.addInitScript({ content: `window.__beforeLoad = ${beforeLoad};` });
  if (headers) {
    await page.route(`**${path}`, async (route) => {
      const r = await route.fetch();
      await route.fulfill({ response: r, headers: { ...r.headers(), ...headers } });
    });
  }
  await page.goto(`${url}${path}`);
  return page;
}

/** Holds the script back for `ms`, so that the page's first calls are certainly queued. */
async function delayScript(page, ms) {
  await page.route(SCRIPT, async (route) => {
    await new Promise((r) => setTimeout(r, ms));
    await route.continue();
  });
}

/** The e2e setup, once the tag-manager build is known to be there. */
function setup(t) {
  if (!existsSync(join(DIST, 'threadline.js'))) {
    throw new Error('npm/dist/threadline.js is missing (run npm/scripts/build.sh, which ends with build-iife.sh)');
  }
  return setupE2e(t);
}

const tracks = (events) => events.filter((e) => e.type === 'track' && !['Consent Changed'].includes(e.event));

test('the snippet in the docs is the one the test pages use', () => {
  const docs = readFileSync(join(ROOT, 'docs', 'tag-managers.md'), 'utf8');
  const page = readFileSync(join(PAGES, 'snippet', 'index.html'), 'utf8');
  const loader = page.split('\n').find((l) => l.startsWith('!function(w,d,u)'));
  assert.ok(loader, 'the fixture has the loader line');
  const documented = loader.replace('"/npm/dist/threadline.js"', '"https://cdn.example.com/threadline/0.1.0/threadline.js"');
  assert.ok(docs.includes(documented), 'docs/tag-managers.md shows the tested snippet');
});

test('calls made before the script arrives are replayed in order, then calls go straight through', { timeout: 60000 }, async (t) => {
  const { collector, context } = await setup(t);
  const before = `function () {
    threadline('track', 'Before Init', { n: 1 });
    threadline('init', { endpoint: location.origin, writeKey: 'demo-write-key', ...${JSON.stringify(FAST)} });
    threadline('page', 'Home', { section: 'top' });
    threadline('identify', 'u-1', { plan: 'gold' });
    threadline('track', 'Queued', { n: 2 });
    threadline(function () { throw new Error('host bug in a queued callback'); });
    threadline('consent', { advertising: 'denied' }, function (c) { window.__consentSeen = c.advertising; });
    threadline('track', 'Queued', { n: 3 });
    threadline('track', 42); // the page's mistake: warned about, skipped
    setTimeout(function () {
      threadline('track', 'Timer', { n: 4 });
      window.__beforeScript = { loaded: !!threadline.loaded, queued: threadline.q.length };
    }, 50);
    threadline(function (client) { window.__client = client; });
  }`;
  const page = await openSnippet(context, collector.url, before, { prepare: (p) => delayScript(p, 700) });
  await page.waitForFunction(() => window.threadline.loaded === true && window.__client);
  const queued = await page.evaluate(() => window.__beforeScript);
  assert.deepEqual(queued, { loaded: false, queued: 11 }, 'every call was queued by the stub before the script ran');
  const after = await page.evaluate(async () => {
    const r = window.threadline('track', 'After Load', { n: 5 });
    let sync = false;
    window.threadline(function () { sync = true; });
    if (!sync) throw new Error('a call after load did not run at once');
    window.threadline('init', { endpoint: 'http://elsewhere.invalid', writeKey: 'x' });
    await new Promise((resolve) => window.threadline('flush', resolve));
    return { returned: r, consentSeen: window.__consentSeen, identity: window.__client.getIdentity() };
  });
  assert.equal(after.returned, undefined);
  assert.equal(after.consentSeen, 'denied', 'the consent callback got the consent in force');
  assert.equal(after.identity.userId, 'u-1');
  await waitForDistinct(collector, 8, 10000);
  await page.waitForTimeout(300);
  const events = await allEvents(collector);
  const seen = events
    .filter((e) => e.event !== 'Consent Changed')
    .map((e) => [e.type, e.event ?? e.name ?? null, e.properties?.n ?? null]);
  assert.deepEqual(seen, [
    ['track', 'Before Init', 1],
    ['page', 'Home', null],
    ['identify', null, null],
    ['track', 'Queued', 2],
    ['track', 'Queued', 3],
    ['track', 'Timer', 4],
    ['track', 'After Load', 5],
  ], 'in call order, each once');
  const byName = (n) => events.find((e) => e.properties?.n === n);
  assert.equal(events.find((e) => e.type === 'page').properties.section, 'top');
  assert.deepEqual(events.find((e) => e.type === 'identify').traits, { plan: 'gold' });
  assert.equal(byName(1).userId ?? null, null, 'before identify: no user id');
  assert.equal(byName(2).userId, 'u-1');
  assert.equal(byName(2).context.consent.advertising, 'granted', 'before the consent call');
  assert.equal(byName(3).context.consent.advertising, 'denied', 'after it');
  assert.ok(page.warnings.some((w) => /track: .*event name must be a string/.test(w)), `a bad call is named: ${page.warnings}`);
  assert.ok(page.warnings.some((w) => /init was called again/.test(w)), 'a second init is refused with a warning');
  assert.equal(events.filter((e) => e.context?.page?.url?.includes('elsewhere')).length, 0);
  assert.deepEqual(page.errors, ['host bug in a queued callback'], "only the host's own error, and the queue went on");
});

test('the script loaded twice (and the snippet pasted twice) makes one client', { timeout: 60000 }, async (t) => {
  const { collector, context } = await setup(t);
  const wasm = [];
  context.on('request', (r) => {
    if (r.url().endsWith('.wasm')) wasm.push(r.url());
  });
  const before = `function () {
    threadline('init', { endpoint: location.origin, writeKey: 'demo-write-key', ...${JSON.stringify(FAST)} });
    threadline('track', 'Once');
    threadline(function (client) { window.__clients = (window.__clients || 0) + 1; });
  }`;
  const page = await openSnippet(context, collector.url, before, { path: '/snippet/double.html' });
  await page.waitForFunction(() => window.__loads === 2 && window.__clients === 1, null, { timeout: 15000 });
  const first = await page.evaluateHandle(() => window.threadline);
  await page.waitForTimeout(300); // the snippet's own async copy too
  const r = await page.evaluate(async (f) => {
    window.threadline('track', 'After Both');
    await new Promise((resolve) => window.threadline('flush', resolve));
    return { same: f === window.threadline, scripts: document.querySelectorAll('script[src$="threadline.js"]').length };
  }, first);
  assert.equal(r.same, true, 'window.threadline stayed the first copy');
  assert.equal(r.scripts, 3, 'the snippet injected the script once, the page included it twice');
  await waitForDistinct(collector, 2, 10000);
  await page.waitForTimeout(500);
  const names = tracks(await allEvents(collector)).map((e) => e.event);
  assert.deepEqual(names, ['Once', 'After Both'], 'each event once');
  assert.equal(await page.evaluate(() => window.__clients), 1);
  assert.equal(wasm.length, 1, 'one core instance');
  assert.ok(!page.warnings.some((w) => /init was called again/.test(w)));
  assert.deepEqual(page.errors, []);
});

test('the dataLayer bridge: configured events pushed before and after init become events', { timeout: 60000 }, async (t) => {
  const { collector, context } = await setup(t);
  const before = `function () {
    // GTM's container: its own push, which the page relies on.
    window.dataLayer = [{ event: 'gtm.js', 'gtm.start': 1 }];
    window.__gtmSaw = [];
    window.dataLayer.push = function () {
      for (var i = 0; i < arguments.length; i++) window.__gtmSaw.push(arguments[i].event || arguments[i][1]);
      Array.prototype.push.apply(this, arguments);
      return 'gtm-' + window.__gtmSaw.length;
    };
    dataLayer.push({ event: 'add_to_cart', ecommerce: { currency: 'EUR', value: 12, items: [{ item_id: 'sku-1' }] } });
    dataLayer.push({ event: 'not_configured', ecommerce: { value: 1 } });
    threadline('init', {
      endpoint: location.origin, writeKey: 'demo-write-key', ...${JSON.stringify(FAST)},
      dataLayer: { events: { add_to_cart: 'Product Added', purchase: 'Order Completed' }, properties: 'ecommerce' },
    });
    dataLayer.push({ event: 'purchase', ecommerce: { transaction_id: 'T1', value: 30 } });
    threadline(function (client) { window.__client = client; });
  }`;
  const page = await openSnippet(context, collector.url, before);
  await page.waitForFunction(() => window.__client);
  const r = await page.evaluate(async () => {
    const circular = { value: 1 };
    circular.self = circular;
    function gtag() { window.dataLayer.push(arguments); }
    const returned = [
      window.dataLayer.push({ event: 'purchase', ecommerce: { transaction_id: 'T2', value: 45 } }),
      window.dataLayer.push({ event: 'page_scroll', percent: 90 }),
      window.dataLayer.push({ event: 'add_to_cart', ecommerce: circular }),
    ];
    gtag('event', 'add_to_cart', { currency: 'USD', value: 7 });
    await new Promise((resolve) => window.threadline('flush', resolve));
    return { returned, saw: window.__gtmSaw, length: window.dataLayer.length };
  });
  assert.deepEqual(r.returned, ['gtm-4', 'gtm-5', 'gtm-6'], "the page's push ran and its return value came back");
  assert.deepEqual(r.saw, ['add_to_cart', 'not_configured', 'purchase', 'purchase', 'page_scroll', 'add_to_cart', 'add_to_cart']);
  assert.equal(r.length, 8, 'every item is in the dataLayer');
  await waitForDistinct(collector, 4, 10000);
  await page.waitForTimeout(300);
  const got = tracks(await allEvents(collector)).map((e) => [e.event, e.properties]);
  assert.deepEqual(got, [
    ['Product Added', { currency: 'EUR', value: 12, items: [{ item_id: 'sku-1' }] }],
    ['Order Completed', { transaction_id: 'T1', value: 30 }],
    ['Order Completed', { transaction_id: 'T2', value: 45 }],
    ['Product Added', { currency: 'USD', value: 7 }],
  ], 'configured events only, with their ecommerce properties, in push order');
  assert.ok(page.warnings.some((w) => /track: .*JSON/.test(w)), `the unserialisable push is warned about: ${page.warnings}`);
  assert.deepEqual(page.errors, []);
});

test('a core that cannot load: no exception reaches the page, threadline() keeps accepting calls', { timeout: 90000 }, async (t) => {
  const { collector, context } = await setup(t);
  const before = (wasm) => `function () {
    window.dataLayer = [];
    threadline('init', { endpoint: location.origin, writeKey: 'demo-write-key', ${wasm ? `wasm: ${JSON.stringify(wasm)},` : ''} ...${JSON.stringify(FAST)},
      dataLayer: { events: ['purchase'] } });
    threadline('track', 'Never Sent');
    threadline('decide', 'home', { max: 1 }, function () { window.__decided = true; });
    threadline('ready', function () { window.__ready = true; });
  }`;
  const calls = async (page) =>
    page.evaluate(async () => {
      const out = [];
      for (const args of [['track', 'Later', { a: 1 }], ['page'], ['identify', 'u'], ['consent', { analytics: 'denied' }],
        ['flush', () => {}], ['on', 'consentChange', () => {}], ['displayed', {}], ['init', {}], ['nonsense']]) {
        try {
          out.push(window.threadline(...args) === undefined ? 'ok' : 'returned');
        } catch (e) {
          out.push(`threw ${e}`);
        }
      }
      return out;
    });
  const cases = [
    { name: 'the .wasm is a 404', wasm: '/npm/dist/missing.wasm', loads: true },
    { name: 'the .wasm is blocked', block: WASM, loads: true },
    { name: 'the script is blocked (an ad blocker)', block: SCRIPT, loads: false },
    {
      name: "the page's CSP forbids the script host",
      headers: { 'content-security-policy': "script-src 'unsafe-inline'; connect-src 'self'" },
      loads: false,
    },
  ];
  for (const c of cases) {
    const p = await openSnippet(context, collector.url, before(c.wasm), {
      headers: c.headers,
      prepare: c.block && ((pg) => pg.route(c.block, (route) => route.abort('blockedbyclient'))),
    });
    if (c.loads) {
      await p.waitForFunction(() => window.threadline.loaded === true);
      await waitFor(() => p.warnings.some((w) => /could not start/.test(w)), 10000, `${c.name}: the warning`);
    } else {
      await p.waitForTimeout(1000);
      assert.equal(await p.evaluate(() => window.threadline.loaded), undefined, `${c.name}: the stub stays`);
    }
    assert.deepEqual(await calls(p), Array(9).fill('ok'), `${c.name}: every call returns quietly`);
    await p.waitForTimeout(300);
    assert.deepEqual(p.errors, [], `${c.name}: no page error`);
    assert.equal(await p.evaluate(() => !!(window.__decided || window.__ready)), false, `${c.name}: no callback`);
    if (c.loads) {
      assert.equal(p.warnings.filter((w) => /threadline/.test(w)).length, 1, `${c.name}: one warning: ${p.warnings}`);
      const layer = await p.evaluate(() => ({ own: window.dataLayer.push === Array.prototype.push, n: window.dataLayer.push({ event: 'purchase' }) }));
      assert.deepEqual(layer, { own: true, n: 1 }, `${c.name}: the dataLayer is handed back untouched`);
    }
    await p.close();
  }
  assert.equal((await collector.stats()).received, 0, 'nothing was sent');
});

test('decide through the queue: the callback gets the decision once the rules are in', { timeout: 60000 }, async (t) => {
  const { collector, context } = await setup(t);
  const wasm = [];
  context.on('request', (r) => {
    if (r.url().includes('.wasm')) wasm.push(new URL(r.url()).pathname + new URL(r.url()).search);
  });
  const before = `function () {
    threadline('init', { endpoint: location.origin, writeKey: 'demo-write-key', ...${JSON.stringify(FAST)},
      wasm: '/npm/dist/sdk_wasm_bg.wasm?from=init' }, { rules: { artifact: ${JSON.stringify(SHOP)} } });
    threadline('track', 'Product Viewed', { productId: 'slacks-01' });
    threadline('track', 'Product Viewed', { productId: 'slacks-01' });
    threadline('decide', 'home', { max: 1 }, function (decisions) {
      window.__home = decisions;
      threadline('displayed', decisions[0]);
      threadline('flush', function () { window.__flushed = true; });
    });
    threadline('decide', 'nowhere', function (decisions, error) {
      window.__nowhere = { decisions: decisions, kind: error && error.kind };
    });
    threadline('ready', function (ok) { window.__rulesReady = ok; }, 5000);
  }`;
  const page = await openSnippet(context, collector.url, before, {
    prepare: (p) => p.addInitScript(() => {
      const streaming = WebAssembly.instantiateStreaming;
      WebAssembly.instantiateStreaming = function (...args) {
        window.__streamed = (window.__streamed || 0) + 1;
        return streaming.apply(this, args);
      };
    }),
  });
  await page.waitForFunction(() => window.__flushed && window.__nowhere && window.__rulesReady !== undefined);
  assert.equal(await page.evaluate(() => window.__streamed), 1, 'compiled while streaming');
  const r = await page.evaluate(() => ({ home: window.__home, nowhere: window.__nowhere, ready: window.__rulesReady }));
  assert.equal(r.ready, true);
  assert.deepEqual(wasm, ['/npm/dist/sdk_wasm_bg.wasm?from=init'], "init's wasm URL is the one fetched");
  assert.equal(r.home.length, 1);
  assert.equal(r.home[0].offerId, 'slacks-discount', 'the two views before decide were counted');
  assert.equal(r.home[0].content.code, 'SLACKS10');
  assert.deepEqual(r.nowhere, { decisions: [], kind: 'decide.unknownPlacement' });
  await waitForDistinct(collector, 3, 10000);
  const shown = tracks(await allEvents(collector)).filter((e) => e.event === 'Offer Displayed');
  assert.equal(shown.length, 1);
  assert.equal(shown[0].properties.offerId, 'slacks-discount');
  assert.equal(shown[0].properties.decisionId, r.home[0].decisionId);
  assert.deepEqual(page.warnings.filter((w) => !/decide: .*nowhere/.test(w)), [], 'no warning (no fallback from streaming)');
  assert.deepEqual(page.errors, []);
});

/**
 * GTM's sandbox APIs the template uses, acting on the real window (the
 * semantics GTM documents: dotted paths, createQueue makes the array).
 */
const SANDBOX = `function (code, data) {
  function walk(path, create) {
    var parts = path.split('.'), o = window;
    for (var i = 0; i < parts.length - 1; i++) {
      if (o[parts[i]] == null) { if (!create) return [undefined]; o[parts[i]] = {}; }
      o = o[parts[i]];
    }
    return [o, parts[parts.length - 1]];
  }
  var tokens = {};
  var apis = {
    copyFromWindow: function (p) { var w = walk(p); return w[0] === undefined ? undefined : w[0][w[1]]; },
    setInWindow: function (p, v, override) { var w = walk(p, true); if (override || w[0][w[1]] === undefined) w[0][w[1]] = v; },
    createQueue: function (p) { var w = walk(p, true); if (!Array.isArray(w[0][w[1]])) w[0][w[1]] = []; var a = w[0][w[1]]; return function (v) { a.push(v); }; },
    callInWindow: function (p) { var w = walk(p); return w[0][w[1]].apply(w[0], Array.prototype.slice.call(arguments, 1)); },
    injectScript: function (url, ok, fail, token) {
      if (window.__gtmTokens && window.__gtmTokens[token]) { ok(); return; }
      (window.__gtmTokens = window.__gtmTokens || {})[token] = true;
      var s = document.createElement('script'); s.src = url; s.onload = ok; s.onerror = fail; document.head.appendChild(s);
    },
    logToConsole: function () { console.log.apply(console, arguments); },
    Object: { keys: Object.keys },
  };
  data.gtmOnSuccess = function () { window.__gtmOk = (window.__gtmOk || 0) + 1; };
  data.gtmOnFailure = function () { window.__gtmFailed = true; };
  code(function (name) { return apis[name]; }, data);
}`;

test('the GTM custom template drives threadline.js through its queue, then directly', { timeout: 60000 }, async (t) => {
  const { collector, context } = await setup(t);
  const tpl = readFileSync(join(ROOT, 'docs', 'gtm', 'threadline.tpl'), 'utf8');
  const js = tpl.split('___SANDBOXED_JS_FOR_WEB_TEMPLATE___')[1].split('___WEB_PERMISSIONS___')[0];
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await delayScript(page, 500);
  await page.goto(`${collector.url}/snippet/empty.html`);
  await page.addScriptTag({ content: `window.__tag = function (data) { (${SANDBOX})(function (require, data) {\n${js}\n}, data); };` });
  const url = `${collector.url}/npm/dist/threadline.js`;
  await page.evaluate(({ url }) => {
    window.dataLayer = [{ event: 'purchase', ecommerce: { transaction_id: 'T9' } }];
    window.__tag({ mode: 'init', scriptUrl: url, endpoint: location.origin, writeKey: 'demo-write-key', consentDefault: 'pending',
      dataLayerEvents: [{ from: 'purchase', to: 'Order Completed' }], dataLayerProperties: 'ecommerce' });
    window.__tag({ mode: 'track', eventName: 'Tag Queued', properties: [{ name: 'where', value: 'queue' }] });
    window.__tag({ mode: 'init', scriptUrl: url, endpoint: location.origin, writeKey: 'demo-write-key' }); // a second init tag
    window.__tag({ mode: 'consent', analytics: 'granted', personalization: '' });
    window.__queued = window.threadline.q.length;
  }, { url });
  await page.waitForFunction(() => window.threadline.loaded === true && window.__gtmOk === 4);
  await page.evaluate(() => {
    window.__tag({ mode: 'page', pageName: 'Checkout', properties: [] });
    window.__tag({ mode: 'track', eventName: 'Tag Direct', properties: [{ name: 'where', value: 'direct' }] });
    window.threadline('flush');
  });
  assert.equal(await page.evaluate(() => window.__queued), 4, 'the commands waited in threadline.q');
  await waitForDistinct(collector, 5, 15000);
  const events = (await allEvents(collector)).filter((e) => e.event !== 'Consent Changed');
  assert.deepEqual(events.map((e) => [e.type, e.event ?? e.name]), [
    ['track', 'Order Completed'], ['track', 'Tag Queued'], ['page', 'Checkout'], ['track', 'Tag Direct'],
  ]);
  assert.equal(events[0].properties.transaction_id, 'T9');
  assert.equal(events[1].properties.where, 'queue');
  assert.equal(events[3].properties.where, 'direct');
  assert.equal(await page.evaluate(() => document.querySelectorAll('script[src$="threadline.js"]').length), 1, 'one script for all tags');
  assert.deepEqual(page.errors, []);
});
