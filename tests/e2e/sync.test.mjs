// Profile sync end to end (issue 9): the real collector serves GET /v1/profile
// with user tokens (`--profile-secret`) and evaluates audiences with the shop
// artifact (`--profile-rules`). The "app" is a device posting Segment batches
// for u-ann (two looks at slacks-01, identify, the order); the web page is
// another device, on another origin than the collector (localhost against
// 127.0.0.1, so CORS and the preflight of the Authorization header are real).
//
//   1. a valid token: after `profileSync`, decide no longer offers the
//      slacks discount the page's own two views earned;
//   2. a token signed with the wrong secret: `profileSyncRefused` (401), the
//      page keeps deciding from its own history;
//   3. personalization denied: no /v1/profile request at all and no synced
//      data in decide; granting it then fetches (so the silence was consent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { checkPrerequisites, gotoSdk, PAGES, ROOT, WRITE_KEY, waitFor } from './helpers.mjs';
import { startCollector } from '../lib/collector.mjs';
import { launch } from '../lib/browser.mjs';

const ARTIFACT_PATH = join(ROOT, 'tests', 'artifacts', 'shop.json');
const ARTIFACT = readFileSync(ARTIFACT_PATH, 'utf8');
const SECRET = 'e2e-profile-secret';
const USER = 'u-ann';
const APP_DEVICE = 'app-1';
const APP_AUDIENCES = ['recent-buyers', 'slacks-browsers', 'vip'];
const GRANTED = { analytics: 'granted', personalization: 'granted', advertising: 'granted', sale: 'granted' };

/** `<exp>.base64url(HMAC-SHA256(secret, "<exp>.<userId>"))`, as a site's back end issues it. */
function userToken(userId, secret = SECRET, ttlSeconds = 3600) {
  const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
  return `${exp}.${createHmac('sha256', secret).update(`${exp}.${userId}`).digest('base64url')}`;
}

/** The app's messages, as the Android SDK would send them (an hour or two ago). */
function appMessages() {
  const t0 = Date.now() - 2 * 3600_000;
  const context = {
    library: { name: 'threadline-android', version: '0.1.0' },
    os: { name: 'Android', version: '15' },
    consent: GRANTED,
  };
  const at = (min) => new Date(t0 + min * 60_000).toISOString();
  const base = (min) => ({ messageId: randomUUID(), anonymousId: APP_DEVICE, timestamp: at(min), context });
  return [
    { ...base(0), type: 'track', event: 'Product Viewed', properties: { productId: 'slacks-01' } },
    { ...base(1), type: 'track', event: 'Product Viewed', properties: { productId: 'slacks-01' } },
    { ...base(2), type: 'identify', userId: USER, traits: { plan: 'silver' } },
    {
      ...base(3), type: 'track', userId: USER, event: 'Order Completed',
      properties: { orderId: 'o-1', products: [{ productId: 'slacks-01', price: 79 }] },
    },
  ];
}

async function postAppBatch(collector) {
  const batch = appMessages();
  const r = await fetch(`${collector.url}/v1/batch`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`,
    },
    body: JSON.stringify({ batch, sentAt: new Date().toISOString() }),
  });
  assert.equal(r.status, 200, `the app's batch is accepted: ${await r.text()}`);
  await waitFor(async () => (await collector.stats()).distinct >= batch.length, 10000, 'the app events stored');
}

/** A collector with profile sync, the app's history in it, and a browser. */
async function start(t) {
  checkPrerequisites();
  const collector = await startCollector([
    '--static-dir', PAGES, '--profile-secret', SECRET, '--profile-rules', ARTIFACT_PATH,
  ]);
  let browser;
  t.after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await collector.stop();
    }
  });
  await postAppBatch(collector);
  browser = await launch();
  // The page's origin is not the collector's.
  const pageOrigin = collector.url.replace('127.0.0.1', 'localhost');
  assert.notEqual(pageOrigin, collector.url, `the collector listens on 127.0.0.1 (${collector.url})`);
  return { collector, browser, pageOrigin };
}

/**
 * Opens the test page with a client (fast batches, rules section, the shop
 * artifact loaded), recording its profile requests and sync events.
 */
async function openShop(browser, pageOrigin, collector, extra = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e && e.stack ? e.stack : e)));
  page.profileRequests = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/v1/profile') {
      page.profileRequests.push({ url: r.url(), method: r.method(), headers: r.headers() });
    }
  });
  page.profileResponses = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname === '/v1/profile' && r.request().method() === 'GET') {
      page.profileResponses.push(r.status());
    }
  });
  const cfg = {
    endpoint: collector.url,
    batch: { maxAgeMs: 200 },
    rules: {},
    ...extra,
  };
  await gotoSdk(page, pageOrigin, cfg);
  await page.evaluate((artifact) => {
    window.synced = [];
    window.refused = [];
    window.client.on('profileSync', (p) => window.synced.push(p));
    window.client.on('profileSyncRefused', (p) => window.refused.push(p));
    if (!window.client.loadRules(artifact)) throw new Error('the artifact is not in use');
  }, ARTIFACT);
  return page;
}

/** The page's own two looks at the slacks. */
async function viewSlacksTwice(page) {
  await page.evaluate(() => {
    window.client.track('Product Viewed', { productId: 'slacks-01' });
    window.client.track('Product Viewed', { productId: 'slacks-01' });
  });
}

const home = (page) => page.evaluate(() => window.client.decide('home')[0]);

test('a valid token: the profile from the app arrives and the slacks discount is gone', async (t) => {
  const { collector, browser, pageOrigin } = await start(t);
  const page = await openShop(browser, pageOrigin, collector);
  await viewSlacksTwice(page);
  let d = await home(page);
  assert.equal(d.offerId, 'slacks-discount', 'two views on this device earn the discount');

  const token = userToken(USER);
  await page.evaluate((tok) => window.client.identify('u-ann', undefined, { userToken: tok }), token);
  const synced = await page.waitForFunction(() => window.synced[0]).then((h) => h.jsonValue());
  // Evaluated by the collector over the app's events: two looks (slacks-browsers),
  // the order (recent-buyers) and with it vip.
  assert.deepEqual([...synced.audiences].sort(), APP_AUDIENCES, 'the collector evaluated the shop artifact for u-ann');

  d = await home(page);
  assert.notEqual(d.offerId, 'slacks-discount', 'she bought the slacks in the app');
  assert.equal(d.offerId, 'vip-shipping', 'a recent buyer (the app\'s order) is a vip');
  assert.equal(d.isDefault, false);

  assert.equal(page.profileRequests.filter((r) => r.method === 'GET').length, 1, JSON.stringify(page.profileRequests));
  const get = page.profileRequests.find((r) => r.method === 'GET');
  const deviceId = await page.evaluate(() => window.client.getIdentity().deviceId);
  const url = new URL(get.url);
  assert.equal(url.origin, collector.url, 'asked of the collector, cross-origin');
  assert.equal(url.searchParams.get('userId'), USER);
  assert.deepEqual(url.searchParams.getAll('exclude'), [deviceId], 'this device counts its own events');
  assert.equal(get.headers.authorization, `Bearer ${token}`);
  assert.deepEqual(page.profileResponses, [200]);

  // The page's events reach the collector without the token.
  await page.evaluate(() => window.client.flush());
  const events = await collector.events('limit=1000');
  const web = events.filter((e) => (e.anonymousId ?? e.anonymous_id) === deviceId);
  assert.ok(web.length >= 3, `the page's events arrived: ${web.length}`);
  assert.ok(!JSON.stringify(events).includes(token.split('.')[1]), 'the token is never sent with events');
  assert.deepEqual(page.errors, []);
});

test('a token signed with the wrong secret is refused; the page decides from its own history', async (t) => {
  const { collector, browser, pageOrigin } = await start(t);
  const page = await openShop(browser, pageOrigin, collector);
  await viewSlacksTwice(page);
  assert.equal((await home(page)).offerId, 'slacks-discount');

  // A token that is not a string is the host's mistake: a TypeError, nothing changes.
  const bad = await page.evaluate(() => {
    try {
      window.client.identify('u-ann', undefined, { userToken: 42 });
      return null;
    } catch (e) {
      return `${e.name}: ${e.message}`;
    }
  });
  assert.match(bad ?? '', /^TypeError: .*userToken/);
  assert.equal(await page.evaluate(() => window.client.getIdentity().userId), null);

  await page.evaluate(
    (tok) => window.client.identify('u-ann', undefined, { userToken: tok }),
    userToken(USER, 'not-the-secret'),
  );
  const refused = await page.waitForFunction(() => window.refused[0]).then((h) => h.jsonValue());
  assert.deepEqual(refused, { status: 401 });
  assert.deepEqual(await page.evaluate(() => window.synced), []);
  assert.deepEqual(page.profileResponses, [401]);
  const d = await home(page);
  assert.equal(d.offerId, 'slacks-discount', 'nothing of the app reached decide');

  // Not asked again with the refused token, even on request.
  await page.evaluate(() => window.client.refreshProfile());
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(page.profileResponses, [401]);
  // A token for another user is refused too (it is u-ann's page asking).
  await page.evaluate(
    (tok) => window.client.identify('u-ann', undefined, { userToken: tok }),
    userToken('u-bob'),
  );
  await page.waitForFunction(() => window.refused.length === 2);
  assert.deepEqual(page.profileResponses, [401, 401]);
  assert.equal((await home(page)).offerId, 'slacks-discount');
  assert.deepEqual(page.errors, [], 'a refusal is an event, never an exception');
});

test('personalization denied: no profile request, no synced data; granting it fetches', async (t) => {
  const { collector, browser, pageOrigin } = await start(t);
  const page = await openShop(browser, pageOrigin, collector, {
    consent: { default: { analytics: 'granted', personalization: 'denied' } },
  });
  await viewSlacksTwice(page);
  await page.evaluate(
    (tok) => {
      window.client.identify('u-ann', undefined, { userToken: tok });
      window.client.refreshProfile();
    },
    userToken(USER),
  );
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(page.profileRequests, [], 'no /v1/profile request without personalization');
  let d = await home(page);
  assert.equal(d.offerId, 'home-welcome');
  assert.equal(d.isDefault, true, 'no profile is read: the default');
  assert.deepEqual(await page.evaluate(() => window.synced), []);

  // The same page with consent: the request goes, so the silence above was consent.
  await page.evaluate(() => window.client.setConsent({ personalization: 'granted' }));
  const synced = await page.waitForFunction(() => window.synced[0]).then((h) => h.jsonValue());
  assert.deepEqual([...synced.audiences].sort(), APP_AUDIENCES);
  d = await home(page);
  assert.equal(d.offerId, 'vip-shipping', 'the app\'s order, no history of this page (denied meanwhile)');
  await page.evaluate(() => window.client.setConsent({ personalization: 'denied' }));
  d = await home(page);
  assert.equal(d.isDefault, true, 'denied again: nothing synced is used');
  assert.deepEqual(page.errors, []);
});
