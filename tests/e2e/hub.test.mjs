// The activity hub (GET /hub on the collector) in Chromium, against the real admin API:
// one shopper on an Android app and on the website (two devices, one user id, a hashed
// email on the app's identify) is found by the raw email and by a device id, shown as one
// person with both devices, their consent and one timeline merged across devices in
// timestamp order, with offer events highlighted; then erased, after which nothing finds
// her. A wrong token and a collector without an admin token show their errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { launch } from '../lib/browser.mjs';
import { startCollector, ROOT } from '../lib/collector.mjs';

const TOKEN = 'hub-admin-token-1';
const WRITE_KEY = 'demo-write-key';
const EMAIL = 'shopper@example.com';
const EMAIL_HASH = createHash('sha256').update(EMAIL).digest('hex');
const USER = 'u-shopper';
// Two days ago, on a whole hour: inside the artifact's 30-day windows whenever the test runs.
const T0 = Math.floor((Date.now() - 2 * 86_400_000) / 3_600_000) * 3_600_000;
const RULES = join(ROOT, 'tests', 'artifacts', 'shop.json');
const REVISION = JSON.parse(readFileSync(RULES, 'utf8')).revision;
const XSS = '<img src=x onerror="window.pwned=1">';

const ANDROID = {
  id: 'android-dev-1',
  context: {
    library: { name: 'threadline-android', version: '0.9.0' },
    os: { name: 'Android', version: '15' },
    consent: { analytics: 'granted', personalization: 'granted', advertising: 'denied', sale: 'pending', gpc: false },
  },
};
const WEB = {
  id: 'web-dev-1',
  context: {
    library: { name: 'threadline-web', version: '0.9.0' },
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64)',
    consent: { analytics: 'granted', personalization: 'denied', advertising: 'pending', sale: 'pending', gpc: false },
  },
};

/** A Segment-spec message of `device`, `minutes` after T0. */
function message(device, minutes, type, fields = {}) {
  const { context: extra, ...rest } = fields;
  return {
    type,
    messageId: `${device.id}-m${minutes}`,
    anonymousId: device.id,
    timestamp: new Date(T0 + minutes * 60_000).toISOString(),
    context: { ...device.context, ...extra },
    ...rest,
  };
}

const offer = (offerId, placement, extra = {}) => ({ offerId, placement, ...extra });
const ANDROID_MESSAGES = [
  message(ANDROID, 0, 'track', { event: 'Product Viewed', properties: { productId: 'slacks-01' } }),
  message(ANDROID, 1, 'track', { event: 'Offer Displayed', properties: offer('slacks-10', 'pdp', { isDefault: false }) }),
  message(ANDROID, 2, 'track', { event: 'Offer Clicked', properties: offer('slacks-10', 'pdp') }),
  message(ANDROID, 5, 'identify', {
    userId: USER,
    traits: { plan: 'gold', nickname: XSS },
    context: { externalIds: [{ id: EMAIL_HASH, type: 'email', collection: 'users', encoding: 'sha256' }] },
  }),
  message(ANDROID, 6, 'track', { userId: USER, event: 'Order Completed', properties: { productId: 'slacks-01', total: 59 } }),
];
const WEB_MESSAGES = [
  message(WEB, 3, 'page', { name: 'Home', properties: { path: '/' } }),
  message(WEB, 60, 'identify', { userId: USER, traits: { plan: 'gold' } }),
  message(WEB, 61, 'track', { userId: USER, event: 'Offer Displayed', properties: offer('welcome-5', 'banner', { isDefault: false }) }),
  // Personalization is denied on the web: this second view of the slacks never counts.
  message(WEB, 62, 'track', { userId: USER, event: 'Product Viewed', properties: { productId: 'slacks-01' } }),
];
/** Every message in timestamp order: the timeline the hub must show, oldest first. */
const ALL = [...ANDROID_MESSAGES, ...WEB_MESSAGES].sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));

async function postBatch(url, batch) {
  const r = await fetch(`${url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` },
    body: JSON.stringify({ batch, sentAt: new Date().toISOString() }),
  });
  assert.equal(r.status, 200, `batch stored: ${await r.text()}`);
}

function checkBinary() {
  const target = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
  const bin = process.env.THREADLINE_COLLECTOR || join(target, 'debug', 'threadline-collector');
  if (!existsSync(bin)) throw new Error(`${bin} missing (run cargo build -p threadline-collector)`);
}

/** A collector (with `options`) and a Chromium page with its errors collected. */
async function setupHub(t, { args = [], ...options } = {}) {
  checkBinary();
  const collector = await startCollector(args, options);
  let browser;
  t.after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await collector.stop();
    }
  });
  browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => {
    // Refused API calls (401/403/404) are logged by the browser; they are expected here.
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) page.errors.push(m.text());
  });
  page.apiCalls = [];
  page.on('request', (r) => r.url().includes('/admin/api/') && page.apiCalls.push(r));
  return { collector, page };
}

/** Submits the search form with the keyboard and waits for its outcome. */
async function search(page, q) {
  await page.fill('#q', q);
  await page.press('#q', 'Enter');
  await page.waitForFunction(() => /found\.$/.test(document.getElementById('status').textContent)
    || !document.getElementById('error').hidden);
  return page.$$eval('#result-list a', (links) => links.map((a) => ({ href: a.getAttribute('href'), text: a.textContent })));
}

test('the hub finds one person across web and Android, shows one timeline, and erases her', { timeout: 120000 }, async (t) => {
  const { collector, page } = await setupHub(t, { adminToken: TOKEN, args: ['--profile-rules', RULES] });
  // Web first: the order received is not the order of the timeline.
  await postBatch(collector.url, WEB_MESSAGES);
  await postBatch(collector.url, ANDROID_MESSAGES);

  const response = await page.goto(`${collector.url}/hub`);
  const headers = response.headers();
  assert.match(headers['content-type'], /^text\/html/);
  assert.match(headers['content-security-policy'], /default-src 'self'/);
  assert.doesNotMatch(headers['content-security-policy'], /unsafe-inline|unsafe-eval/);
  for (const [path, type] of [['/hub/hub.js', /^text\/javascript/], ['/hub/hub.css', /^text\/css/]]) {
    const r = await fetch(collector.url + path);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-type'), type, path);
  }
  assert.ok(await page.isVisible('#token'), 'the page asks for the token first');
  assert.ok(await page.isHidden('#search-form'));

  // A wrong token: the search is refused, the page says so and asks again.
  await page.fill('#token', 'not-the-token');
  await page.press('#token', 'Enter');
  await search(page, USER);
  const refused = await page.textContent('#error');
  t.diagnostic(`wrong token: ${refused}`);
  assert.match(refused, /token refused.*401/i);
  assert.ok(await page.isVisible('#token'), 'the token form is back');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the refused token is forgotten');

  await page.fill('#token', TOKEN);
  await page.press('#token', 'Enter');
  assert.ok(await page.isHidden('#error'));

  // The raw email (as an agent types it): the collector normalises and hashes it.
  const byEmail = await search(page, 'Shopper@Example.com');
  const sent = page.apiCalls.at(-1);
  assert.equal(new URL(sent.url()).searchParams.get('q'), 'Shopper@Example.com', 'the page sends the email as typed');
  assert.equal(await sent.headerValue('authorization'), `Bearer ${TOKEN}`);
  assert.equal(byEmail.length, 1, `one person for the email: ${JSON.stringify(byEmail)}`);
  assert.match(byEmail[0].text, new RegExp(USER));
  assert.match(await page.textContent('#result-list'), /2 devices/);
  const byDevice = await search(page, WEB.id);
  assert.deepEqual(byDevice.map((r) => r.href), [byEmail[0].href], 'the web device finds the same person');
  assert.deepEqual((await search(page, ANDROID.id)).map((r) => r.href), [byEmail[0].href], 'so does the app');
  assert.deepEqual(await search(page, 'nobody@example.com'), []);
  assert.match(await page.textContent('#result-list'), /No one matches/);

  // Open her with the keyboard.
  await search(page, USER);
  await page.focus('#result-list a');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#timeline li');
  assert.match(page.url(), /#\/people\//);
  assert.equal(await page.textContent('#person h2'), USER);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'person-title', 'focus moves to the person');

  // Two devices, with their platforms, libraries and consent.
  const devices = await page.$$eval('li.device', (list) => list.map((d) => ({
    id: d.dataset.device,
    platform: d.dataset.platform,
    label: d.querySelector('h4').textContent.trim(),
    text: d.textContent,
    consent: Object.fromEntries([...d.querySelectorAll('.badge')].map((b) => [b.dataset.purpose, { state: b.dataset.state, cls: b.className }])),
  })));
  t.diagnostic(`devices: ${JSON.stringify(devices.map(({ text, ...d }) => d))}`);
  assert.equal(devices.length, 2);
  const app = devices.find((d) => d.id === ANDROID.id);
  const site = devices.find((d) => d.id === WEB.id);
  assert.ok(app && site, 'both devices listed');
  assert.equal(app.platform, 'android');
  assert.match(app.label, /Android/);
  assert.match(app.text, /threadline-android 0\.9\.0/);
  assert.match(app.text, /Events5/);
  assert.equal(site.platform, 'web');
  assert.match(site.label, /Web/);
  assert.match(site.text, /threadline-web 0\.9\.0/);
  assert.match(site.text, /Events4/);
  for (const [device, sentConsent] of [[app, ANDROID.context.consent], [site, WEB.context.consent]]) {
    for (const purpose of ['analytics', 'personalization', 'advertising', 'sale']) {
      const badge = device.consent[purpose];
      assert.ok(badge, `${device.id} shows ${purpose}`);
      assert.equal(badge.state, sentConsent[purpose], `${device.id} ${purpose}`);
      assert.match(badge.cls, new RegExp(`\\b${sentConsent[purpose]}\\b`), 'the badge is styled by its state');
    }
  }

  // Identities: the user id and the hashed email (shortened, whole in the title); the
  // devices have their own list.
  const identities = await page.$$eval('#person section:nth-of-type(1) tbody tr', (rows) => rows.map((r) => ({
    kind: r.cells[0].textContent,
    shown: r.cells[1].textContent,
    value: r.cells[1].querySelector('code').title,
  })));
  t.diagnostic(`identities: ${JSON.stringify(identities)}`);
  const email = identities.find((i) => i.value === EMAIL_HASH);
  assert.ok(email, 'the email hash is a linked identity');
  assert.match(email.kind, /email/);
  assert.ok(email.shown.length < EMAIL_HASH.length, 'a long value is shortened');
  assert.ok(identities.some((i) => i.value.endsWith(USER)), 'the user id is a linked identity');

  // Traits are text, never markup.
  assert.match(await page.textContent('#person'), /nickname/);
  const cell = await page.$$eval('#person td', (cells) => cells.map((c) => c.textContent).find((x) => x.includes('onerror')));
  assert.equal(cell, XSS);
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.equal(await page.$$eval('#person img', (imgs) => imgs.length), 0);

  // Audiences of the rules artifact, evaluated on what she consented to (the app's events):
  // a recent buyer (Order Completed) and a VIP (plan gold), but not a slacks browser (two
  // views), since the second view was on the web, where personalization is denied.
  const audiences = await page.$$eval('#person .chip', (chips) => chips.map((c) => c.textContent));
  t.diagnostic(`audiences: ${JSON.stringify(audiences)}`);
  assert.deepEqual([...audiences].sort(), ['recent-buyers', 'vip']);
  assert.match(await page.textContent('#person'), new RegExp(`Rules revision ${REVISION}`));

  // One timeline across devices: newest first by default, oldest first on request.
  const timeline = () => page.$$eval('#timeline li', (list) => list.map((li) => ({
    id: li.dataset.messageId,
    at: li.dataset.timestamp,
    platform: li.querySelector('[data-platform]').dataset.platform,
    offer: li.dataset.offer || null,
    tag: li.querySelector('.offer-tag')?.textContent || null,
    background: getComputedStyle(li).backgroundColor,
    hasProperties: !!li.querySelector('details'),
  })));
  const newest = await timeline();
  assert.deepEqual(newest.map((e) => e.id), ALL.map((m) => m.messageId).reverse(), 'newest first, merged across devices');
  await page.click('#order');
  const oldest = await timeline();
  t.diagnostic(`timeline: ${oldest.map((e) => `${e.at} ${e.platform} ${e.id}${e.offer ? ` [${e.offer}]` : ''}`).join(' | ')}`);
  assert.deepEqual(oldest.map((e) => e.id), ALL.map((m) => m.messageId), 'oldest first, in timestamp order');
  assert.deepEqual(oldest.map((e) => e.platform), ALL.map((m) => (m.anonymousId === WEB.id ? 'web' : 'android')));
  for (let i = 1; i < oldest.length; i++) assert.ok(Date.parse(oldest[i - 1].at) <= Date.parse(oldest[i].at));
  assert.ok(new Set(oldest.slice(0, 4).map((e) => e.platform)).size === 2, 'the devices interleave');

  const offers = Object.fromEntries(ALL.filter((m) => /^Offer /.test(m.event)).map((m) => [m.messageId, m.event === 'Offer Clicked' ? 'clicked' : 'displayed']));
  const plain = oldest.find((e) => !offers[e.id]);
  for (const e of oldest) {
    assert.equal(e.offer, offers[e.id] || null, `offer marking of ${e.id}`);
    if (!e.offer) continue;
    assert.match(e.tag, e.offer === 'clicked' ? /Offer clicked: slacks-10/ : /Offer shown: (slacks-10|welcome-5)/);
    assert.notEqual(e.background, plain.background, `${e.id} is highlighted`);
  }
  assert.ok(oldest.find((e) => e.id === ANDROID_MESSAGES[0].messageId).hasProperties, 'properties are in a <details>');
  assert.equal(await page.$$eval('#timeline details[open]', (d) => d.length), 0, 'collapsed');

  const shot = join(ROOT, 'target', 'hub', 'person.png');
  mkdirSync(join(ROOT, 'target', 'hub'), { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  t.diagnostic(`screenshot: ${shot}`);
  console.log(`hub screenshot: ${shot}`);

  // Erasure: Escape cancels the dialog; confirming deletes and reports.
  await page.click('#erase');
  assert.ok(await page.isVisible('#erase-dialog'));
  await page.keyboard.press('Escape');
  assert.ok(await page.isHidden('#erase-dialog'));
  assert.ok(await page.isVisible('#timeline'), 'cancelled: nothing erased');
  const personPath = `/admin/api/people/${byEmail[0].href.slice('#/people/'.length)}`;
  assert.equal((await fetch(collector.url + personPath, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);

  await page.click('#erase');
  await page.click('#erase-confirm');
  await page.waitForSelector('#erase-report');
  const report = await page.textContent('#erase-report');
  t.diagnostic(`erasure: ${report}`);
  assert.match(report, new RegExp(`${ALL.length} events`));
  assert.match(report, /2 devices/);
  assert.equal((await fetch(collector.url + personPath, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
  for (const q of [USER, EMAIL, ANDROID.id, WEB.id]) assert.deepEqual(await search(page, q), [], `nothing finds ${q} after erasure`);

  // Opening the erased person's address shows a plain 404.
  await page.goto(`${collector.url}/hub${byEmail[0].href}`);
  await page.reload();
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error'), /404/);
  assert.deepEqual(page.errors, [], 'no script errors, no CSP violations');
});

test('without --admin-token the hub shows the 403 plainly', { timeout: 60000 }, async (t) => {
  const { collector, page } = await setupHub(t);
  await page.goto(`${collector.url}/hub`);
  await page.fill('#token', 'anything');
  await page.press('#token', 'Enter');
  await search(page, USER);
  const error = await page.textContent('#error');
  t.diagnostic(`no admin token: ${error}`);
  assert.match(error, /403/);
  assert.match(error, /--admin-token/);
  assert.deepEqual(page.errors, []);
});

test('an unreachable collector is a plain network error', { timeout: 60000 }, async (t) => {
  const { collector, page } = await setupHub(t, { adminToken: TOKEN });
  await page.goto(`${collector.url}/hub`);
  await page.fill('#token', TOKEN);
  await page.press('#token', 'Enter');
  await page.route('**/admin/api/**', (route) => route.abort('connectionrefused'));
  await search(page, USER);
  assert.match(await page.textContent('#error'), /Could not reach the collector/);
});
