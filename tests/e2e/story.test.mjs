// The cross-device story end to end (issue 9), with the real pieces on one
// collector: the Kotlin client on the JVM is the app (scripts/story-app.sh:
// two looks at slacks-01, identify with a user token, the order), the web
// package in Chromium is the site on another origin. Once the site's shopper
// identifies with her token, its `decide` for the home placement no longer
// offers the slacks discount her own two looks earned; the activity hub shows
// one person with two devices (Android and web) and both timelines merged in
// order. With `personalization` denied, the site asks for nothing and uses
// nothing synced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { checkPrerequisites, gotoSdk, PAGES, ROOT, waitFor } from './helpers.mjs';
import { startCollector } from '../lib/collector.mjs';
import { launch } from '../lib/browser.mjs';

const ARTIFACT_PATH = join(ROOT, 'tests', 'artifacts', 'shop.json');
const ARTIFACT = readFileSync(ARTIFACT_PATH, 'utf8');
const SECRET = 'story-profile-secret';
const ADMIN = 'story-admin-token';
const USER = 'u-ann-story';
const EMAIL = 'Ann.Story@Example.com';

/** `<exp>.base64url(HMAC-SHA256(secret, "<exp>.<userId>"))`, as the shop's back end issues it. */
function userToken(userId, secret = SECRET) {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  return `${exp}.${createHmac('sha256', secret).update(`${exp}.${userId}`).digest('base64url')}`;
}

/** Runs the app (the Kotlin facade on the JVM); resolves its JSON report. */
function runApp(url, token) {
  return new Promise((resolve, reject) => {
    execFile('bash', [join(ROOT, 'scripts', 'story-app.sh'), url, USER, token, EMAIL],
      { cwd: ROOT, timeout: 15 * 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`story app failed (${err.code ?? err.signal}): ${stderr.slice(-4000)}`));
          return;
        }
        const line = stdout.trim().split('\n').at(-1);
        try {
          resolve(JSON.parse(line));
        } catch {
          reject(new Error(`story app printed no JSON: ${stdout}\n${stderr.slice(-2000)}`));
        }
      });
  });
}

/** The site: the npm package on a page of another origin, the shop artifact in use. */
async function openSite(browser, origin, collector, consent) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.profileRequests = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/v1/profile') page.profileRequests.push(r.method());
  });
  await gotoSdk(page, origin, {
    endpoint: collector.url,
    batch: { maxAgeMs: 200 },
    rules: {},
    ...(consent ? { consent } : {}),
  });
  await page.evaluate((artifact) => {
    window.synced = [];
    window.client.on('profileSync', (p) => window.synced.push(p));
    if (!window.client.loadRules(artifact)) throw new Error('the artifact is not in use');
  }, ARTIFACT);
  return page;
}

async function viewSlacksTwice(page) {
  await page.evaluate(() => {
    window.client.page('Product', { path: '/p/slacks-01' });
    window.client.track('Product Viewed', { productId: 'slacks-01' });
    window.client.track('Product Viewed', { productId: 'slacks-01' });
  });
}

const home = (page) => page.evaluate(() => window.client.decide('home')[0]);

test('the app buys the slacks, the site stops offering them, the hub shows one person', { timeout: 20 * 60_000 }, async (t) => {
  checkPrerequisites();
  const collector = await startCollector(
    ['--static-dir', PAGES, '--profile-secret', SECRET, '--profile-rules', ARTIFACT_PATH],
    { adminToken: ADMIN },
  );
  let browser;
  t.after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await collector.stop();
    }
  });

  // --- the app -------------------------------------------------------------------
  const app = await runApp(collector.url, userToken(USER));
  t.diagnostic(`app: ${JSON.stringify(app)}`);
  assert.equal(app.userId, USER);
  assert.ok(app.delivered >= 5, `the app's events were delivered: ${app.delivered}`);
  assert.equal(app.home.viewed, 'slacks-discount', 'in the app, two looks earn the discount');
  assert.notEqual(app.home.bought, 'slacks-discount', 'and the order ends it there');

  // --- the site, an hour later ---------------------------------------------------
  browser = await launch();
  const origin = collector.url.replace('127.0.0.1', 'localhost');
  const site = await openSite(browser, origin, collector);
  await viewSlacksTwice(site);
  assert.equal((await home(site)).offerId, 'slacks-discount', 'her looks on the site alone would earn it');
  await site.evaluate(({ user, email, token }) => window.client.identify(user, { email }, { ids: { email }, userToken: token }),
    { user: USER, email: EMAIL, token: userToken(USER) });
  const synced = await site.waitForFunction(() => window.synced[0]).then((h) => h.jsonValue());
  t.diagnostic(`synced audiences: ${JSON.stringify(synced.audiences)}`);
  assert.ok(synced.audiences.includes('recent-buyers'), 'the collector saw the app\'s order');
  const after = await home(site);
  assert.notEqual(after.offerId, 'slacks-discount', 'she bought them in the app: no slacks discount on the site');
  assert.equal(after.offerId, 'vip-shipping', 'a recent buyer is offered the VIP shipping instead');
  const siteDevice = await site.evaluate(() => window.client.getIdentity().deviceId);
  await site.evaluate(() => window.client.flush());
  await waitFor(async () => (await collector.events('limit=1000')).filter((e) => (e.anonymousId ?? e.anonymous_id) === siteDevice).length >= 4,
    20000, 'the site\'s events at the collector');
  assert.deepEqual(site.errors, []);

  // --- the hub: one person, two devices, one timeline ----------------------------
  const found = await collector.admin(`/admin/api/search?q=${encodeURIComponent(EMAIL)}`);
  assert.equal(found.people.length, 1, `one person for her email: ${JSON.stringify(found)}`);
  const person = await collector.admin(`/admin/api/people/${encodeURIComponent(found.people[0].id)}`);
  const platforms = Object.fromEntries(person.devices.map((d) => [d.anonymousId, d.platform]));
  assert.deepEqual(platforms, { [app.deviceId]: 'android', [siteDevice]: 'web' }, 'two devices, the app and the site');
  const times = person.timeline.map((e) => Date.parse(e.timestamp));
  assert.deepEqual(times, [...times].sort((a, b) => a - b), 'one timeline in time order');
  const byDevice = (id) => person.timeline.filter((e) => e.anonymousId === id).map((e) => e.event ?? e.type);
  assert.ok(byDevice(app.deviceId).includes('Order Completed'), 'the app\'s order is on it');
  assert.ok(byDevice(siteDevice).includes('identify'), 'and the site\'s sign-in');
  const lastApp = Math.max(...person.timeline.filter((e) => e.anonymousId === app.deviceId).map((e) => Date.parse(e.timestamp)));
  const firstSite = Math.min(...person.timeline.filter((e) => (e.anonymousId ?? e.anonymous_id) === siteDevice).map((e) => Date.parse(e.timestamp)));
  assert.ok(lastApp <= firstSite, 'the app\'s session comes before the site\'s');

  // The page an agent sees.
  const hub = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await hub.goto(`${collector.url}/hub`);
  await hub.fill('#token', ADMIN);
  await hub.press('#token', 'Enter');
  await hub.fill('#q', USER);
  await hub.press('#q', 'Enter');
  await hub.waitForSelector('#result-list a');
  await hub.click('#result-list a');
  await hub.waitForSelector('#timeline li');
  const cards = await hub.$$eval('li.device', (list) => list.map((d) => d.dataset.platform).sort());
  assert.deepEqual(cards, ['android', 'web']);
  const shown = await hub.$$eval('#timeline li', (list) => list.map((li) => li.dataset.messageId));
  assert.deepEqual(shown, person.timeline.map((e) => e.messageId).reverse(), 'the page shows the same timeline, newest first');
  const dir = join(ROOT, 'target', 'hub');
  mkdirSync(dir, { recursive: true });
  const shot = join(dir, 'story.png');
  await hub.screenshot({ path: shot, fullPage: true });
  t.diagnostic(`screenshot: ${shot}`);

  // --- personalization denied on the site ----------------------------------------
  const denied = await openSite(browser, origin, collector, { default: { analytics: 'granted', personalization: 'denied' } });
  await viewSlacksTwice(denied);
  await denied.evaluate(({ user, token }) => window.client.identify(user, undefined, { userToken: token }),
    { user: USER, token: userToken(USER) });
  await denied.waitForTimeout(1500);
  assert.deepEqual(denied.profileRequests, [], 'no profile request without personalization');
  assert.deepEqual(await denied.evaluate(() => window.synced), []);
  const d = await home(denied);
  assert.equal(d.offerId, 'home-welcome');
  assert.equal(d.isDefault, true, 'the default offer, nothing read from any profile');
});
