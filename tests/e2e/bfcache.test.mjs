// Back/forward cache: a page that leaves for another page of the same site
// and comes back (pageshow with persisted=true) shares its tab id, and so its
// stored queue, with the page it went to. Nothing either page tracked may be
// lost, whichever of them the browser later throws away.
//
// Playwright launches Chromium with --disable-back-forward-cache; these
// tests drop that flag so the cache works as it does for visitors.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { setup, waitFor, waitForDistinct, waitForClient, allEvents, clientStats, summary } from './helpers.mjs';

const BFCACHE = { launch: { ignoreDefaultArgs: ['--disable-back-forward-cache'] } };
const CFG = { batch: { maxAgeMs: 60000 }, queue: { persistDebounceMs: 100 } };
const hash = `#cfg=${encodeURIComponent(JSON.stringify(CFG))}`;

function recordPageshows() {
  window.__pageshows = [];
  addEventListener('pageshow', (e) => window.__pageshows.push(e.persisted));
}

function track(page, label, n) {
  return page.evaluate(({ label, n }) => Array.from({ length: n }, (_, i) => window.client.track('Bfcache Test', { label, index: i })), { label, n });
}

/** Labels of the events in this tab's stored queue. */
function storedLabels(page) {
  return page.evaluate(() => {
    const key = `threadline.q.${sessionStorage.getItem('threadline.tab')}`;
    return [...(localStorage.getItem(key) || '').matchAll(/"label":"(\w+)"/g)].map((m) => m[1]);
  });
}

test('a page kept in the back/forward cache loses nothing when the tab is closed', { timeout: 60000 }, async (t) => {
  const { collector, context, open } = await setup(t, ['--fail-rate', '1.0'], { browserOptions: BFCACHE });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.addInitScript(recordPageshows);

  // Page 1 queues events while the collector is down.
  await page.goto(`${collector.url}/sdk.html?p=1${hash}`);
  await waitForClient(page);
  const e1 = await track(page, 'p1', 10);
  // The visitor goes to page 2 of the site (page 1 enters the cache); page 2
  // restores the tab's stored queue and tracks its own events.
  await page.goto(`${collector.url}/sdk.html?p=2${hash}`);
  await waitForClient(page);
  const e2 = await track(page, 'p2', 10);
  await waitFor(async () => (await storedLabels(page)).filter((l) => l === 'p2').length === 10, 10000, 'page 2 to store its events');
  // Back to page 1, restored from the cache (page 2 enters it in turn).
  await page.goBack({ waitUntil: 'commit' });
  await page.waitForFunction(() => window.__pageshows && window.__pageshows.includes(true), null, { timeout: 10000 });
  assert.ok(await page.evaluate(() => new URL(location.href).searchParams.get('p') === '1' && window.__pageshows.at(-1) === true), 'page 1 came back from the back/forward cache');
  const s1 = await clientStats(page);
  t.diagnostic(`page 1 back from the cache: accepted ${s1.accepted}, queued ${s1.queued}, handedOver ${s1.handedOver}`);
  // The visitor goes on on page 1; its queue is stored again.
  const e3 = await track(page, 'p1again', 5);
  await waitFor(async () => (await storedLabels(page)).filter((l) => l === 'p1again').length === 5, 10000, 'page 1 to store its new events');
  t.diagnostic(`stored queue of the tab before it closes: ${JSON.stringify((await storedLabels(page)).reduce((m, l) => ((m[l] = (m[l] || 0) + 1), m), {}))}`);
  // The tab is closed: page 1 gets pagehide; page 2 (in the cache, or
  // already unloaded) stores nothing more, so what the tab's stored queue
  // holds now is all that is left of page 2's events.
  await page.close();

  await collector.faults({ failRate: 0 });
  const next = await open(CFG);
  const sn = await clientStats(next);
  t.diagnostic(`next tab: adopted ${sn.adoptedQueues}, restored ${sn.restored}`);
  await next.evaluate(() => window.client.flush());
  const all = [...e1, ...e2, ...e3];
  try {
    await waitForDistinct(collector, all.length, 8000);
  } finally {
    const got = new Set((await allEvents(collector)).map((e) => e.messageId));
    t.diagnostic(`delivered: page 1 ${e1.filter((id) => got.has(id)).length}/10, page 2 ${e2.filter((id) => got.has(id)).length}/10, page 1 again ${e3.filter((id) => got.has(id)).length}/5; collector ${summary(await collector.stats())}`);
  }
  const events = await allEvents(collector);
  assert.deepEqual(events.map((e) => e.messageId).sort(), [...all].sort());
  assert.deepEqual([...page.errors, ...next.errors], []);
});

test('back/forward navigation with a working collector: everything arrives', { timeout: 60000 }, async (t) => {
  const { collector, context } = await setup(t, [], { browserOptions: BFCACHE });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.addInitScript(recordPageshows);
  const ids = [];
  await page.goto(`${collector.url}/sdk.html?p=1${hash}`);
  await waitForClient(page);
  ids.push(...(await track(page, 'p1', 10))); // still queued when page 1 is left
  await page.goto(`${collector.url}/sdk.html?p=2${hash}`);
  await waitForClient(page);
  ids.push(...(await track(page, 'p2', 10)));
  await page.evaluate(() => window.client.flush());
  await waitForDistinct(collector, 20, 15000);
  await page.goBack({ waitUntil: 'commit' });
  await page.waitForFunction(() => window.__pageshows && window.__pageshows.includes(true), null, { timeout: 10000 });
  ids.push(...(await track(page, 'p1again', 5)));
  await page.evaluate(() => window.client.flush());
  const stats = await waitForDistinct(collector, ids.length, 15000);
  const s1 = await clientStats(page);
  t.diagnostic(`page 1 after coming back: handedOver ${s1.handedOver}, queued ${s1.queued}; collector: ${summary(stats)}`);
  const events = await allEvents(collector);
  assert.deepEqual(events.map((e) => e.messageId).sort(), [...ids].sort());
  assert.deepEqual(page.errors, []);
});
