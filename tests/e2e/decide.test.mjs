// On-device decisions end to end, on the real demo shop (examples/web-demo)
// served by the collector with its signed rules (rules/shop.json + .sig):
// the slacks story (default offer, two views, the discount, the order that
// suppresses it for good, also after a reload), the hero A/B test (sticky,
// and the variant the bucketing scheme gives this device), the feedback
// events the collector receives, revalidation of the artifact with
// If-None-Match answered 304, a tampered artifact refused while the
// cached one stays in use, and the defaults shown while the rules are late.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mmh3 from 'murmurhash3js-revisited';

import { checkPrerequisites, ROOT, waitFor } from './helpers.mjs';
import { startCollector } from '../lib/collector.mjs';
import { launch } from '../lib/browser.mjs';

const DEMO = join(ROOT, 'examples', 'web-demo');
const ARTIFACT = JSON.parse(readFileSync(join(DEMO, 'rules', 'shop.json'), 'utf8'));
const SLACKS = 'slacks-charcoal';
const TEE = 'tee-organic';
const HERO_TEST = ARTIFACT.experiments.find((e) => e.placement === 'hero');

/**
 * The variant `murmur3_x86_32/v1` gives a device (docs/artifact.md): holdout
 * first, then the variants by cumulative weight (traffic is 1 here).
 */
function expectedVariant(experiment, deviceId) {
  const h = mmh3.x86.hash32(Buffer.from(`${experiment.id}.${deviceId}`, 'utf8'), 0) >>> 0;
  const bucket = Number((BigInt(h) * 10000n) >> 32n);
  const held = (experiment.holdout ?? 0) * 10000;
  if (bucket < held) return 'holdout';
  const total = experiment.variants.reduce((s, v) => s + v.weight, 0);
  let edge = held;
  for (const v of experiment.variants) {
    edge += ((10000 - held) * v.weight) / total;
    if (bucket < edge) return v.id;
  }
  return experiment.variants.at(-1).id;
}

/** The offer a hero variant shows (the control: the best-ranked hero offer). */
function heroOfferFor(variant) {
  if (variant === 'holdout') return ARTIFACT.placements.find((p) => p.id === 'hero').default.id;
  const v = HERO_TEST.variants.find((x) => x.id === variant);
  if (v?.offer) return v.offer;
  return ARTIFACT.offers.filter((o) => o.placement === 'hero').sort((a, b) => b.priority - a.priority)[0].id;
}

async function start(t) {
  checkPrerequisites();
  const collector = await startCollector(['--static-dir', DEMO]);
  let browser;
  t.after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await collector.stop();
    }
  });
  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e && e.stack ? e.stack : e)));
  // Every request for the artifact, with what was sent and what came back.
  page.rulesRequests = [];
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/rules/')) return;
    page.rulesRequests.push({
      path: u.pathname,
      ifNoneMatch: r.request().headers()['if-none-match'] ?? null,
      status: r.status(),
      etag: r.headers().etag ?? null,
    });
  });
  return { collector, browser, context, page };
}

/** Opens (or reloads) the shop and waits for the SDK and the first decisions. */
async function openShop(page, url) {
  if (url) await page.goto(`${url}/`);
  else await page.reload();
  await page.waitForFunction(() => window.__demo?.client && window.__demo.offers && window.__demo.panel);
  const err = await page.evaluate(() => window.__demo.ready.then(() => null, (e) => String(e)));
  assert.equal(err, null, 'the SDK starts in the demo');
  assert.equal(
    await page.evaluate(() => typeof window.__demo.client.decide),
    'function',
    'the npm package has the decisions API (build it from the web branch)',
  );
  await page.waitForSelector('#home-slot[data-offer-id]');
}

const slot = (page, id) =>
  page.evaluate((sel) => {
    const n = document.getElementById(sel);
    return n ? { ...n.dataset, text: n.textContent } : null;
  }, id);

/** Clicks `selector` and waits until the page tracked `event` (the demo's log). */
async function act(page, selector, event) {
  const before = await page.evaluate(() => window.__demo.log.length);
  await page.click(selector);
  await page.waitForFunction(
    ([n, name]) => window.__demo.log.slice(n).some((e) => e.name === name),
    [before, event],
  );
}

const home = (page) => act(page, 'nav a[data-nav="home"]', 'Product List Viewed');

test('the slacks story: default, discount after two views, never again once ordered; sticky hero variant', async (t) => {
  const { collector, page } = await start(t);
  await openShop(page, collector.url);

  // A new visitor, consent pending: the defaults, no experiment (no device id).
  let homeSlot = await slot(page, 'home-slot');
  assert.equal(homeSlot.offerId, 'home-welcome');
  assert.equal(homeSlot.default, 'true');
  assert.equal((await slot(page, 'hero-slot')).experimentId, '');
  assert.ok(await page.evaluate(() => window.__demo.client.rulesRevision()), 'rules loaded');
  assert.equal(await page.evaluate(() => window.__demo.client.rulesRevision()), ARTIFACT.revision);

  await page.click('#consent-banner [data-consent="accept"]');
  await page.waitForSelector(`#hero-slot[data-experiment-id="${HERO_TEST.id}"]`);
  const deviceId = await page.evaluate(() => window.__demo.client.getIdentity().deviceId);
  assert.ok(deviceId, 'a device id once analytics is granted');
  const hero = await slot(page, 'hero-slot');
  const variant = expectedVariant(HERO_TEST, deviceId);
  assert.equal(hero.variantId, variant, `device ${deviceId} is in variant ${variant} by murmur3_x86_32/v1`);
  assert.equal(hero.offerId, heroOfferFor(variant));
  homeSlot = await slot(page, 'home-slot');
  assert.equal(homeSlot.offerId, 'home-welcome', 'nothing viewed yet: the default home offer');

  // One look at the slacks and one at the tee: not yet.
  await act(page, `[data-product="${SLACKS}"]`, 'Product Viewed');
  await home(page);
  await act(page, `[data-product="${TEE}"]`, 'Product Viewed');
  await home(page);
  assert.equal((await slot(page, 'home-slot')).offerId, 'home-welcome', 'one view of the slacks is not enough');

  // The second look: back home, the discount on exactly those slacks.
  await act(page, `[data-product="${SLACKS}"]`, 'Product Viewed');
  await home(page);
  homeSlot = await slot(page, 'home-slot');
  assert.equal(homeSlot.offerId, 'slacks-discount');
  assert.equal(homeSlot.default, 'false');
  assert.match(homeSlot.text, /Charcoal Wool Slacks/);
  assert.match(homeSlot.text, /SLACKS10/);
  // Rendered as text, never as HTML.
  assert.equal(await page.evaluate(() => document.querySelector('#home-slot a.promo-cta').getAttribute('href')), `#/product/${SLACKS}`);
  const panelRow = await page.waitForSelector('#decisions li[data-offer-id="slacks-discount"]');
  assert.match(await panelRow.textContent(), /chosen by the rules/);

  // The visitor follows the offer (Offer Clicked) and buys the slacks.
  await act(page, '#home-slot a.promo-cta', 'Offer Clicked');
  await page.waitForSelector('#add-to-cart');
  await act(page, '#add-to-cart', 'Product Added');
  await act(page, '.cart-link', 'Cart Viewed');
  await act(page, '#checkout-btn', 'Checkout Started');
  await act(page, '#place-order', 'Order Completed');
  await page.waitForSelector('#order-id');

  // Bought: the slacks offer is suppressed; the thank-you offer takes the slot.
  await home(page);
  homeSlot = await slot(page, 'home-slot');
  assert.notEqual(homeSlot.offerId, 'slacks-discount');
  assert.equal(homeSlot.offerId, 'thanks-shipping');

  // Another look at the slacks changes nothing: the suppression is for good.
  await act(page, `[data-product="${SLACKS}"]`, 'Product Viewed');
  await home(page);
  assert.equal((await slot(page, 'home-slot')).offerId, 'thanks-shipping');

  // After a reload (profile and rules from storage): same, and the same variant.
  await openShop(page);
  await page.waitForSelector(`#hero-slot[data-experiment-id="${HERO_TEST.id}"]`);
  assert.equal((await slot(page, 'home-slot')).offerId, 'thanks-shipping', 'still suppressed after a reload');
  const heroAfter = await slot(page, 'hero-slot');
  assert.equal(heroAfter.variantId, hero.variantId, 'the hero variant is sticky across reloads');
  assert.equal(heroAfter.offerId, hero.offerId);
  assert.equal(await page.evaluate(() => window.__demo.client.getIdentity().deviceId), deviceId);

  // The collector received the feedback, with the decision's ids.
  await page.evaluate(() => window.__demo.client.flush());
  const displayed = await waitFor(async () => {
    const rows = await collector.events('event=Offer%20Displayed&limit=1000');
    const want = ['slacks-discount', 'thanks-shipping', hero.offerId];
    return want.every((o) => rows.some((r) => r.properties?.offerId === o)) ? rows : false;
  }, 20000, 'Offer Displayed events at the collector');
  const slacksShown = displayed.find((r) => r.properties.offerId === 'slacks-discount');
  assert.equal(slacksShown.properties.placement, 'home');
  assert.equal(slacksShown.properties.isDefault, false);
  assert.match(slacksShown.properties.decisionId, /\S/);
  const heroShown = displayed.filter((r) => r.properties.placement === 'hero' && r.properties.experimentId);
  assert.ok(heroShown.length >= 2, 'hero displays before and after the reload');
  for (const r of heroShown) {
    assert.equal(r.properties.experimentId, HERO_TEST.id);
    assert.equal(r.properties.variantId, hero.variantId);
    assert.equal(r.properties.offerId, hero.offerId);
    assert.equal(r.anonymousId, deviceId);
  }
  const ids = new Set(displayed.map((r) => r.properties.decisionId));
  assert.equal(ids.size, displayed.length, 'one Offer Displayed per decision');
  const clicks = await collector.events('event=Offer%20Clicked');
  assert.equal(clicks.length, 1);
  assert.equal(clicks[0].properties.offerId, 'slacks-discount');
  assert.equal(clicks[0].properties.decisionId, slacksShown.properties.decisionId);

  // Revalidation: the SDK sends the ETag it has and the collector answers 304.
  const first = page.rulesRequests.find((r) => r.path === '/rules/shop.json' && r.status === 200);
  assert.ok(first?.etag, 'the artifact came with an ETag');
  assert.ok(page.rulesRequests.some((r) => r.path === '/rules/shop.json.sig' && r.status === 200), 'the signature was fetched');
  const before = page.rulesRequests.length;
  await page.evaluate(() => window.__demo.client.refreshRules());
  const revalidated = await waitFor(
    () => page.rulesRequests.slice(before).find((r) => r.path === '/rules/shop.json'),
    10000,
    'a revalidation request',
  );
  assert.equal(revalidated.ifNoneMatch, first.etag);
  assert.equal(revalidated.status, 304);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(
    !page.rulesRequests.slice(before).some((r) => r.path === '/rules/shop.json.sig'),
    'no signature refetch for an unchanged artifact',
  );
  assert.equal(await page.evaluate(() => window.__demo.client.rulesRevision()), ARTIFACT.revision);
  assert.deepEqual(page.errors, []);
});

test('a tampered artifact is refused and the cached one stays in use, also after a reload', async (t) => {
  const { collector, page } = await start(t);
  await openShop(page, collector.url);
  await page.click('#consent-banner [data-consent="accept"]');
  await page.waitForSelector(`#hero-slot[data-experiment-id="${HERO_TEST.id}"]`);
  assert.equal(await page.evaluate(() => window.__demo.client.rulesRevision()), ARTIFACT.revision);

  // Someone changes the served artifact (every shopper gets the slacks
  // discount) without the signing key: the bytes no longer match the .sig.
  const tampered = JSON.parse(JSON.stringify(ARTIFACT));
  tampered.revision = 'tampered-1';
  tampered.offers.find((o) => o.id === 'slacks-discount').condition = { '==': [1, 1] };
  const body = JSON.stringify(tampered);
  await page.route(`${collector.url}/rules/shop.json`, (route) =>
    route.fulfill({
      status: 200,
      body,
      headers: { 'content-type': 'application/json', etag: '"tampered-1"', 'cache-control': 'no-cache' },
    }),
  );
  const notices = await page.evaluate(() => {
    window.__rulesErrors = [];
    window.__demo.client.on('rulesError', (n) => window.__rulesErrors.push(n));
    window.__demo.client.refreshRules();
    return true;
  });
  assert.ok(notices);
  const errors = await waitFor(
    () => page.evaluate(() => (window.__rulesErrors.length ? window.__rulesErrors : false)),
    10000,
    'a rulesError notice',
  );
  assert.equal(errors[0].kind, 'rules.signature');
  assert.equal(await page.evaluate(() => window.__demo.client.rulesRevision()), ARTIFACT.revision, 'the good rules stay');
  await home(page);
  assert.equal((await slot(page, 'home-slot')).offerId, 'home-welcome', 'the tampered condition is not applied');
  await page.waitForFunction(() => /refused: rules\.signature/.test(document.getElementById('rules-status').textContent));

  // A reload starts from the cached, verified copy; the tampered one is refused again.
  await openShop(page);
  assert.equal(await page.evaluate(() => window.__demo.client.rulesRevision()), ARTIFACT.revision);
  assert.equal((await slot(page, 'home-slot')).offerId, 'home-welcome');
  const stillGood = await page.evaluate(() => window.__demo.client.decide('home', { max: 3 }).map((d) => d.offerId));
  assert.deepEqual(stillGood, ['home-welcome']);
  assert.deepEqual(page.errors, []);
});

test('rules later than ready(1500): the slots show the defaults, then the decisions once the rules arrive', async (t) => {
  const { collector, page } = await start(t);
  await page.route(`${collector.url}/rules/shop.json`, async (route) => {
    await new Promise((r) => setTimeout(r, 2500));
    await route.continue();
  });
  await page.goto(`${collector.url}/`);
  await page.waitForSelector('#home-slot[data-offer-id]');
  const early = await slot(page, 'home-slot');
  assert.equal(early.offerId, 'fallback', 'no decision without rules');
  assert.match(early.text, /Free returns/, 'the default content is shown meanwhile');
  assert.equal(await page.evaluate(() => window.__demo.decisions.length), 0, 'nothing reported as displayed');
  await page.waitForSelector('#home-slot[data-offer-id="home-welcome"]', { timeout: 10000 });
  assert.equal(await page.evaluate(() => window.__demo.client.rulesRevision()), ARTIFACT.revision);
  assert.equal((await slot(page, 'hero-slot')).offerId, 'hero-default');
  assert.deepEqual(page.errors, []);
});
