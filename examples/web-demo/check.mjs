#!/usr/bin/env node
// The scripted visit behind `scripts/demo.sh --check`.
//
//   node examples/web-demo/check.mjs [URL]
//
// Drives headless Chromium (tests/lib/browser.mjs) through the demo shop at
// URL: the product list and the slacks while the consent banner is open
// (checking that nothing is stored or sent), "Accept all", two products
// (the slacks twice), the home page's slacks discount (decided on the
// device from the signed rules), add to cart, a
// reload while events are still queued, the cart, sign in, checkout and
// purchase, and the discount gone from the home page once bought; then
// flushes and waits until the collector's /events holds the
// messageId of every event the page tracked. Without URL it starts its own
// collector (target/debug/threadline-collector must be built).
//
// Prints a summary and exits 0, or prints why and exits 1. Gives up after 60 s.

import { join } from 'node:path';
import { launch } from '../../tests/lib/browser.mjs';

const TIMEOUT_MS = 60_000;
const STEP_MS = 15_000;
const USER_ID = 'check-user-42';
const EMAIL = 'ada@example.com';
const SLACKS = 'slacks-charcoal';
const TEE = 'tee-organic';

const started = Date.now();
let step = 'starting';
let browser;
let ownCollector;
const pageErrors = [];
const consoleErrors = [];

async function cleanup() {
  const closing = [];
  if (browser) closing.push(browser.close().catch(() => {}));
  if (ownCollector) closing.push(ownCollector.stop().catch(() => {}));
  await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 5000))]);
}

async function fail(message) {
  if (stopping) return new Promise(() => {}); // interrupted: that handler exits
  console.error(`\nThreadline demo check: FAILED while ${step}\n  ${message}`);
  if (pageErrors.length) console.error(`  page errors:\n    ${pageErrors.join('\n    ')}`);
  if (consoleErrors.length) {
    const shown = [...new Set(consoleErrors)].slice(0, 5);
    console.error(`  console errors (${consoleErrors.length}, distinct shown):\n    ${shown.join('\n    ')}`);
  }
  await cleanup();
  process.exit(1);
}

const deadline = setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);

// Ctrl-C (or a kill) closes Chromium before exiting. Playwright's own signal
// handlers are off so that exactly one closer runs, even mid-launch.
let launching;
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    console.error(`\nThreadline demo check: interrupted (${signal}) while ${step}`);
    if (!browser && launching) browser = await launching.catch(() => undefined);
    await cleanup();
    process.exit(130);
  });
}

function progress(what) {
  step = what;
  if (process.env.CHECK_VERBOSE) console.error(`check: ${((Date.now() - started) / 1000).toFixed(1)} s ${what}`);
}

async function getJson(base, path) {
  const r = await fetch(base + path, { cache: 'no-store' });
  if (!r.ok) throw new Error(`GET ${path}: HTTP ${r.status}`);
  return r.json();
}

/** Every row of GET /events, paged with ?after=. */
async function allEvents(base) {
  const rows = [];
  let after = 0;
  for (;;) {
    const page = await getJson(base, `/events?after=${after}&limit=10000`);
    rows.push(...page);
    if (page.length < 10000) return rows;
    after = page[page.length - 1].rowid;
  }
}

async function main() {
  let base = process.argv[2];
  if (!base) {
    progress('starting a collector');
    const { startCollector, ROOT } = await import('../../tests/lib/collector.mjs');
    ownCollector = await startCollector(['--static-dir', join(ROOT, 'examples', 'web-demo')]);
    base = ownCollector.url;
  }
  base = base.replace(/\/+$/, '');

  progress('checking the collector');
  await getJson(base, '/stats').catch((e) => fail(`no collector at ${base} (${e.message})`));

  progress('launching Chromium');
  launching = launch({ launch: { handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false } });
  browser = await launching;
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => pageErrors.push(String(e.message || e)));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });

  const tracked = () => page.evaluate(() => window.__demo.log.length);
  /** Clicks `selector` and waits until the page has tracked `event`. */
  async function act(selector, event, what) {
    progress(what);
    const before = await tracked();
    await page.click(selector);
    await page.waitForFunction(
      ([n, name]) => window.__demo.log.slice(n).some((e) => e.name === name),
      [before, event],
    );
  }
  async function ready(what) {
    progress(what);
    await page.waitForFunction(() => window.__demo && window.__demo.ready);
    const ok = await page.evaluate(() => window.__demo.ready.then(() => true, (e) => String(e)));
    if (ok !== true) await fail(`the SDK did not start in the page: ${ok}`);
    await page.waitForFunction(() => window.__demo.log.length > 0 && window.__demo.log.at(-1).load === window.__demo.loadNo);
  }

  // --- the visit ----------------------------------------------------------
  progress('opening the demo');
  const tOpen = Date.now();
  await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
  await ready('waiting for the SDK');
  const readyMs = Date.now() - tOpen;
  const sdkReadyMs = await page.evaluate(() => window.__demo.readyMs);
  await page.waitForFunction(() => window.__demo.log.some((e) => e.name === 'Product List Viewed'));

  await act(`[data-product="${SLACKS}"]`, 'Product Viewed', 'viewing the slacks');

  // Consent first: until the banner is answered nothing is stored or sent.
  progress('checking that nothing leaves before consent');
  const requestsBefore = (await getJson(base, '/stats')).requests;
  await page.waitForSelector('#consent-banner:not([hidden])');
  await page.waitForTimeout(1200); // longer than the demo's batch age
  const beforeConsent = await page.evaluate(() => ({
    cookie: document.cookie,
    keys: Object.keys(localStorage).filter((k) => k.startsWith('threadline.')),
    consent: window.__demo.client.getConsent(),
    deviceId: window.__demo.client.getIdentity().deviceId,
    held: window.__demo.client.stats().held,
  }));
  if (beforeConsent.cookie.includes('tl_did') || beforeConsent.keys.length) {
    await fail(`the SDK stored something before consent: ${JSON.stringify(beforeConsent)}`);
  }
  if (beforeConsent.consent.analytics !== 'pending' || beforeConsent.deviceId !== null || !beforeConsent.held) {
    await fail(`expected pending consent, no device id and held events: ${JSON.stringify(beforeConsent)}`);
  }
  if ((await getJson(base, '/stats')).requests !== requestsBefore) await fail('a request left the page before consent');
  progress('accepting all in the consent banner');
  await page.click('#consent-banner [data-consent="accept"]');
  await page.waitForFunction(() => window.__demo.client.getConsent().analytics === 'granted');
  const granted = await page.evaluate(() => ({
    cookie: document.cookie.includes('tl_did='),
    deviceId: window.__demo.client.getIdentity().deviceId,
    held: window.__demo.client.stats().held,
    bannerHidden: document.getElementById('consent-banner').hidden,
  }));
  if (!granted.cookie || !granted.deviceId || granted.held !== 0 || !granted.bannerHidden) {
    await fail(`accepting did not take effect: ${JSON.stringify(granted)}`);
  }

  await act('nav a[data-nav="home"]', 'Product List Viewed', 'back to the list');
  await act(`[data-product="${TEE}"]`, 'Product Viewed', 'viewing the tee');
  progress('going back in history');
  {
    const before = await tracked();
    await page.goBack();
    await page.waitForFunction((n) => window.__demo.log.slice(n).some((e) => e.name === 'Product List Viewed'), before);
  }
  await act(`[data-product="${SLACKS}"]`, 'Product Viewed', 'viewing the slacks again');

  // The decisions story: two views of the slacks (with personalisation
  // granted) and the home page offers a discount on them.
  const homeSlot = () =>
    page.evaluate(() => {
      const n = document.getElementById('home-slot');
      return n ? { ...n.dataset } : null;
    });
  const hasDecide = await page.evaluate(() => typeof window.__demo.client.decide === 'function');
  if (!hasDecide) await fail('the npm package has no decide(): build it from a branch with the decisions API');
  await act('nav a[data-nav="home"]', 'Product List Viewed', 'back home for the offer');
  const story = { rules: await page.evaluate(() => window.__demo.client.rulesRevision()) };
  if (!story.rules) await fail('the signed rules did not load');
  if ((await homeSlot()).offerId !== 'slacks-discount') {
    // The view before consent was held, not learned: one more look.
    await act(`[data-product="${SLACKS}"]`, 'Product Viewed', 'one more look at the slacks');
    await act('nav a[data-nav="home"]', 'Product List Viewed', 'back home for the offer');
  }
  story.offered = await homeSlot();
  if (story.offered.offerId !== 'slacks-discount') await fail(`expected the slacks discount on the home page, got ${JSON.stringify(story.offered)}`);
  story.hero = await page.evaluate(() => ({ ...document.getElementById('hero-slot').dataset }));
  if (!story.hero.variantId) await fail(`the hero is not in the A/B test: ${JSON.stringify(story.hero)}`);
  await act('#home-slot a.promo-cta', 'Offer Clicked', 'following the slacks offer');
  progress('choosing a size');
  await page.click('label.size:has(input[value="32"])');
  await act('#add-to-cart', 'Product Added', 'adding the slacks to the cart');

  // Reload right away: the last events are still in the SDK's queue (the
  // batch age is 1 s). They must arrive anyway: beaconed on pagehide and/or
  // restored from localStorage and sent by the next page.
  // If a batch happened to leave just now, browse a little more so that
  // there is something waiting when the page goes away.
  const snapshot = () =>
    page.evaluate(() => {
      const s = window.__demo.client.stats();
      return {
        ids: [...window.__demo.trackedIds],
        queued: s.queued - s.inFlight, // waiting, not yet on the wire
        anonymousId: window.__demo.client.getIdentity().deviceId,
      };
    });
  let beforeReload = await snapshot();
  for (let i = 0; i < 3 && beforeReload.queued === 0; i++) {
    await act('nav a[data-nav="home"]', 'Product List Viewed', 'browsing until some events are queued');
    beforeReload = await snapshot();
  }
  if (beforeReload.queued === 0) await fail('could not catch the SDK with events queued before the reload');
  progress('reloading with events queued');
  await page.reload({ waitUntil: 'domcontentloaded' });
  await ready('waiting for the SDK after the reload');
  const afterReload = await page.evaluate(() => ({
    ids: [...window.__demo.trackedIds],
    stats: window.__demo.client.stats(),
    anonymousId: window.__demo.client.getIdentity().deviceId,
    bannerHidden: document.getElementById('consent-banner')?.hidden !== false,
  }));
  const lost = beforeReload.ids.filter((id) => !afterReload.ids.includes(id));
  if (lost.length) await fail(`the page forgot ${lost.length} tracked id(s) across the reload`);

  await act('.cart-link', 'Cart Viewed', 'viewing the cart');
  progress('signing in');
  await page.click('#account-link');
  await page.waitForSelector('#signin-form');
  await page.fill('#signin-user', USER_ID);
  await page.fill('#signin-email', EMAIL);
  await act('#signin-submit', USER_ID, 'signing in');
  await page.waitForSelector('#checkout-btn');
  await act('#checkout-btn', 'Checkout Started', 'starting the checkout');
  await act('#place-order', 'Order Completed', 'placing the order');
  const orderId = (await page.textContent('#order-id')).trim();
  await act('nav a[data-nav="home"]', 'Product List Viewed', 'back home after the order');
  story.after = await homeSlot();
  if (story.after.offerId === 'slacks-discount') await fail('the slacks discount is still offered after the slacks were bought');

  progress('flushing');
  const tFlush = Date.now();
  const final = await page.evaluate(async () => {
    await window.__demo.client.flush();
    return { ids: [...window.__demo.trackedIds], stats: window.__demo.client.stats() };
  });
  const ids = [...new Set([...beforeReload.ids, ...final.ids])];

  // --- wait for the collector ----------------------------------------------
  progress(`waiting for the collector to hold all ${ids.length} events`);
  let rows;
  let missing = ids;
  while (missing.length) {
    rows = await allEvents(base);
    const have = new Set(rows.map((r) => r.messageId));
    missing = ids.filter((id) => !have.has(id));
    if (!missing.length) break;
    if (Date.now() - started > TIMEOUT_MS - 3000) {
      const stats = await page.evaluate(() => window.__demo.client.stats()).catch(() => null);
      const names = await page.evaluate(() => Object.fromEntries(window.__demo.log.map((e) => [e.id, e.name]))).catch(() => ({}));
      const server = await getJson(base, '/stats').catch(() => null);
      const list = missing.slice(0, 8).map((id) => `${names[id] || '?'} (${id})`).join(', ');
      await fail(
        `${missing.length} of ${ids.length} tracked events never reached the collector: ${list}${missing.length > 8 ? ', …' : ''}\n` +
          `  SDK stats: queued ${stats?.queued}, in flight ${stats?.inFlight}, uploads ${stats?.uploads}, retries ${stats?.retries}, ` +
          `last status ${stats?.lastStatus}, dropped ${(stats?.droppedMaxAttempts || 0) + (stats?.droppedRejected || 0) + (stats?.droppedExpired || 0) + (stats?.droppedQueueFull || 0)}\n` +
          `  collector: ${server ? `${server.requests} requests, responses by status ${JSON.stringify(server.statusCounts)}, faults ${JSON.stringify(server.faults)}` : 'unreachable'}`,
      );
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  const deliveredMs = Date.now() - tFlush;

  // --- what arrived must be what the page meant ----------------------------------
  progress('checking the stored events');
  const mine = rows.filter((r) => ids.includes(r.messageId));
  const problems = [];
  const byEvent = (name) => mine.filter((r) => r.type === 'track' && r.event === name);
  for (const name of ['Product List Viewed', 'Product Viewed', 'Product Added', 'Cart Viewed', 'Checkout Started', 'Order Completed']) {
    if (!byEvent(name).length) problems.push(`no "${name}" event stored`);
  }
  const slacksViews = byEvent('Product Viewed').filter((r) => r.properties?.product_id === SLACKS).length;
  if (slacksViews < 2) problems.push(`expected the slacks viewed at least twice, got ${slacksViews}`);
  if (mine.filter((r) => r.type === 'page').length < 6) problems.push('fewer page events than route changes');
  const order = byEvent('Order Completed')[0];
  if (order) {
    const p = order.properties || {};
    if (p.order_id !== orderId) problems.push(`Order Completed order_id ${p.order_id} != ${orderId} on the page`);
    if (typeof p.revenue !== 'number' || !(p.revenue > 0)) problems.push('Order Completed has no revenue');
    if (p.currency !== 'USD') problems.push('Order Completed has no currency');
    const line = p.products?.find((x) => x.product_id === SLACKS);
    if (!line) problems.push('Order Completed does not list the slacks');
    else for (const k of ['product_id', 'sku', 'name', 'price', 'quantity']) if (line[k] === undefined) problems.push(`Order Completed product has no ${k}`);
    if (order.userId !== USER_ID) problems.push(`Order Completed userId is ${order.userId}, expected ${USER_ID}`);
  }
  const shown = byEvent('Offer Displayed').filter((r) => r.properties?.offerId === 'slacks-discount');
  if (!shown.length) problems.push('no Offer Displayed for the slacks discount stored');
  else if (shown[0].properties.decisionId !== story.offered.decisionId) problems.push('Offer Displayed carries another decisionId than the page showed');
  const heroShown = byEvent('Offer Displayed').find((r) => r.properties?.placement === 'hero' && r.properties?.variantId);
  if (!heroShown || heroShown.properties.variantId !== story.hero.variantId) problems.push(`no Offer Displayed for hero variant ${story.hero.variantId}`);
  if (!byEvent('Offer Clicked').length) problems.push('no Offer Clicked stored');
  const ident = mine.find((r) => r.type === 'identify');
  if (!ident) problems.push('no identify event stored');
  else if (ident.userId !== USER_ID || ident.traits?.email !== EMAIL) problems.push(`identify has userId ${ident.userId} and traits ${JSON.stringify(ident.traits)}`);
  const anon = new Set(mine.map((r) => r.anonymousId));
  if (anon.size !== 1) problems.push(`events carry ${anon.size} different anonymousIds (expected one, kept across the reload)`);
  if (beforeReload.anonymousId !== afterReload.anonymousId) problems.push('the anonymousId changed across the reload');
  if (!afterReload.bannerHidden) problems.push('the consent banner came back after the reload (the choice is remembered)');
  if (final.stats.contained) problems.push(`the SDK contained ${final.stats.contained} internal error(s)`);
  if (pageErrors.length) problems.push(`${pageErrors.length} uncaught error(s) in the page`);
  if (problems.length) await fail(problems.join('\n  '));

  // --- summary -------------------------------------------------------------
  const s = await getJson(base, '/stats');
  const n = (x) => Number(x || 0).toLocaleString('en-US');
  const perEvent = s.received ? Math.round(s.bytes / s.received) : 0;
  const lines = [
    ['consent', `nothing stored or sent before the banner was answered (${beforeConsent.held} events held); accepted all, device ${granted.deviceId.slice(0, 8)}…`],
    ['decisions', `rules ${story.rules} (signed); hero ${story.hero.experimentId}/${story.hero.variantId} → ${story.hero.offerId}; home: ${story.offered.offerId} after two views, ${story.after.offerId} once bought`],
    ['events tracked', `${ids.length} (${beforeReload.ids.length} before the reload, ${beforeReload.queued} of them still queued when it happened)`],
    ['distinct received', `${n(s.distinct)}${s.distinct === ids.length ? ' (all of them)' : ''}`],
    ['duplicates', `${n(s.duplicates)} (at-least-once; the collector de-duplicates by messageId)`],
    ['requests', `${n(s.requests)} (${n(s.beaconRequests)} by sendBeacon)`],
    ['body bytes on wire', n(s.bytes)],
    ['bytes per event', `${perEvent} (${n(s.bytes)} B / ${n(s.received)} received)`],
    ['gzip requests', `${n(s.gzipRequests)} of ${n(s.requests)}`],
    ['after the reload', `restored ${afterReload.stats.restored}, adopted queues ${afterReload.stats.adoptedQueues}`],
    ['SDK at the end', `delivered ${final.stats.delivered} this page, uploads ${final.stats.uploads}, retries ${final.stats.retries}, queued ${final.stats.queued}`],
    ['timings', `SDK ready ${sdkReadyMs} ms after navigation (first events tracked after ${readyMs} ms), all stored ${deliveredMs} ms after flush(), whole check ${((Date.now() - started) / 1000).toFixed(1)} s`],
  ];
  console.log('Threadline demo check: OK');
  for (const [k, v] of lines) console.log(`  ${k.padEnd(20)} ${v}`);
  if (consoleErrors.length) console.log(`  note: ${consoleErrors.length} console error(s): ${consoleErrors.slice(0, 3).join(' | ')}`);

  clearTimeout(deadline);
  await cleanup();
  process.exit(0);
}

main().catch((e) => fail(e && e.stack ? e.stack.split('\n').slice(0, 4).join('\n  ') : String(e)));
