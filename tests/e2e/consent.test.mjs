// Consent and identity in a real browser: nothing leaves the page or is
// stored before consent; a grant releases what was held; a denial deletes
// every stored trace at once and stops every tab; the Global Privacy Control
// signal; the device cookie on the registrable domain (one device across
// subdomains), written only when the device record changes; and an IAB TCF
// CMP on the page (`__tcfapi`), with TC strings made by the IAB's own library.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { GVL, TCModel, TCString, Segment } from '@iabtechlabtcf/core';

import { setup, gotoSdk, waitFor, waitForDistinct, allEvents, PAGES } from './helpers.mjs';

const INSTRUMENT = readFileSync(join(PAGES, 'instrument.js'), 'utf8');
const VISIBILITY = readFileSync(join(PAGES, 'visibility.js'), 'utf8');
const script = (...parts) => ({ content: parts.join('\n;\n') });

const FAST = { batch: { maxAgeMs: 200 }, queue: { persistDebounceMs: 50 } };
const PENDING = { ...FAST, consent: { default: 'pending' } };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Every /v1/batch request any page of `context` makes (fetch and beacon). */
function batchRequests(context) {
  const list = [];
  context.on('request', (r) => {
    if (r.url().includes('/v1/batch')) list.push(r.url());
  });
  return list;
}

/** What the SDK could have left on the device, as the page sees it. */
function stored(page) {
  return page.evaluate(() => ({
    cookie: document.cookie,
    local: Object.keys(localStorage).filter((k) => k.startsWith('threadline.')).sort(),
    session: Object.keys(sessionStorage).filter((k) => k.startsWith('threadline.')).sort(),
  }));
}

const NOTHING = { cookie: '', local: [], session: [] };

/** Hidden then visible again: the SDK beacons and stores what it would on a tab switch. */
function hideAndShow(page) {
  return page.evaluate(() => {
    window.__setVisibility('hidden');
    window.__setVisibility('visible');
  });
}

test('pending holds everything in memory; a grant releases it; a denial deletes everything and stops', { timeout: 60000 }, async (t) => {
  const { collector, context, open } = await setup(t);
  const requests = batchRequests(context);
  const page = await open(PENDING, { initScript: script(INSTRUMENT, VISIBILITY) });

  const held = await page.evaluate(async () => {
    const c = window.client;
    window.__seen = [];
    window.__offConsent = c.on('consentChange', (x) => window.__seen.push(['consentChange', x.analytics]));
    c.on('sessionStart', (x) => window.__seen.push(['sessionStart', typeof x.sessionId]));
    try {
      c.on('pageView', () => {});
    } catch (e) {
      window.__seen.push([e.name]);
    }
    const ids = [c.page(), ...Array.from({ length: 5 }, (_, i) => c.track('Held', { i }))];
    await c.flush();
    return { ids, identity: c.getIdentity(), consent: c.getConsent(), stats: c.stats() };
  });
  await hideAndShow(page);
  await page.waitForTimeout(800); // past batch.maxAgeMs and the persist debounce
  assert.equal(requests.length, 0, 'no request left the page');
  assert.equal((await collector.stats()).received, 0);
  assert.equal(held.identity.deviceId, null, 'no device id before consent');
  assert.equal(held.consent.analytics, 'pending');
  assert.equal(held.stats.held, 6);
  assert.deepEqual(await stored(page), NOTHING, 'no cookie, no localStorage or sessionStorage key');
  assert.deepEqual(await page.evaluate(() => window.__watch.setItem.filter((s) => s.sdk)), [], 'the SDK wrote no storage');
  assert.equal(await page.evaluate(() => window.__watch.cookieWrites), 0, 'and no cookie');

  const granted = await page.evaluate(() => {
    const consent = window.client.setConsent({ analytics: 'granted' });
    return { consent, identity: window.client.getIdentity(), cookie: document.cookie, local: Object.keys(localStorage).sort() };
  });
  assert.equal(granted.consent.analytics, 'granted');
  const device = granted.identity.deviceId;
  assert.match(device, UUID);
  assert.match(granted.cookie, new RegExp(`(^|; )tl_did=1\\.${device}\\.\\d+\\.\\d+\\.gppp($|;)`), 'the device cookie, set in the same call');
  for (const k of ['threadline.did', 'threadline.id']) assert.ok(granted.local.includes(k), `${k} stored`);
  const later = await page.evaluate(async () => {
    const ids = [window.client.track('After Grant', { n: 1 }), window.client.track('After Grant', { n: 2 })];
    await window.client.flush();
    return ids;
  });
  await waitForDistinct(collector, 9, 10000);
  assert.deepEqual(await page.evaluate(() => window.__seen), [['TypeError'], ['sessionStart', 'number'], ['consentChange', 'granted']], 'on() listeners heard');
  await page.evaluate(() => window.__offConsent());
  const events = await allEvents(collector);
  assert.equal(events.length, 9, '6 held, the consent change, 2 after');
  const byId = new Map(events.map((e) => [e.messageId, e]));
  for (const id of held.ids) {
    const e = byId.get(id);
    assert.ok(e, `held event ${id} arrived`);
    assert.equal(e.context.consent.analytics, 'pending', 'collected under pending');
    assert.equal(e.anonymousId, device);
  }
  for (const id of later) assert.equal(byId.get(id)?.context.consent.analytics, 'granted');
  const changes = events.filter((e) => e.event === 'Consent Changed');
  assert.equal(changes.length, 1);
  assert.equal(changes[0].properties.analytics, 'granted');
  assert.equal(changes[0].properties.source, 'api');

  const received = (await collector.stats()).received;
  const sent = requests.length;
  const denied = await page.evaluate(async () => {
    const mark = window.__watch.setItem.length;
    const consent = window.client.setConsent({ analytics: 'denied' });
    const now = {
      cookie: document.cookie,
      local: Object.keys(localStorage).filter((k) => k.startsWith('threadline.')),
      session: Object.keys(sessionStorage).filter((k) => k.startsWith('threadline.')),
    };
    for (let i = 0; i < 5; i++) window.client.track('After Denial', { i });
    await window.client.flush();
    return { consent, now, mark, identity: window.client.getIdentity() };
  });
  assert.equal(denied.consent.analytics, 'denied');
  assert.deepEqual(denied.now, NOTHING, 'cookie and every threadline.* key deleted within the call');
  assert.equal(denied.identity.deviceId, null);
  await hideAndShow(page);
  await page.waitForTimeout(1000);
  const writes = await page.evaluate((mark) => window.__watch.setItem.slice(mark).filter((s) => s.sdk), denied.mark);
  assert.deepEqual(writes, [], 'nothing stored after the denial');
  assert.equal((await page.evaluate(() => window.client.stats())).droppedConsent, 5);
  assert.equal((await page.evaluate(() => window.__seen)).length, 3, 'an unsubscribed listener hears nothing');
  await page.goto('about:blank'); // pagehide: the last chance to beacon
  await page.waitForTimeout(500);
  assert.equal(requests.length, sent, 'no request after the denial');
  assert.equal((await collector.stats()).received, received);
  const after = await open(); // the site again, without a client
  assert.deepEqual(await stored(after), NOTHING);
  assert.deepEqual(page.errors, []);
});

test('a grant in one tab releases the held events of another; a denial in one tab stops the other', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t);
  const a = await open(PENDING);
  const b = await open(PENDING);
  const heldB = await b.evaluate(() => [1, 2, 3].map((i) => window.client.track('Held In B', { i })));
  await a.evaluate(() => window.client.setConsent({ analytics: 'granted' }));
  await waitFor(async () => (await b.evaluate(() => window.client.getConsent().analytics)) === 'granted', 5000, 'tab B to see the grant');
  const [ida, idb] = await Promise.all([a, b].map((p) => p.evaluate(() => window.client.getIdentity().deviceId)));
  assert.equal(idb, ida, 'one device id for both tabs');
  await b.evaluate(() => window.client.flush());
  await waitForDistinct(collector, 4, 10000); // B's three and A's consent change
  const byId = new Map((await allEvents(collector)).map((e) => [e.messageId, e]));
  for (const id of heldB) assert.equal(byId.get(id)?.anonymousId, ida, `B's held event ${id} arrived`);

  await a.evaluate(() => window.client.setConsent({ analytics: 'denied' }));
  await waitFor(async () => (await b.evaluate(() => window.client.getConsent().analytics)) === 'denied', 5000, 'tab B to see the denial');
  const received = (await collector.stats()).received;
  const s = await b.evaluate(async () => {
    for (let i = 0; i < 5; i++) window.client.track('After Denial In B', { i });
    await window.client.flush();
    return { identity: window.client.getIdentity(), stats: window.client.stats() };
  });
  assert.equal(s.identity.deviceId, null);
  assert.equal(s.stats.droppedConsent, 5);
  await b.waitForTimeout(800);
  assert.equal((await collector.stats()).received, received, 'tab B sends nothing');
  assert.deepEqual(await stored(b), NOTHING);
  assert.deepEqual([...a.errors, ...b.errors], []);
});

test('Global Privacy Control: sale and advertising stay denied whatever is granted', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t);
  const gpc = () => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { configurable: true, get: () => true });
  const page = await open(FAST, { initScript: { content: `(${gpc})();` } });
  const r = await page.evaluate(async () => {
    const before = window.client.getConsent();
    const returned = window.client.setConsent({ sale: 'granted', advertising: 'granted', personalization: 'granted' });
    const id = window.client.track('Under GPC');
    await window.client.flush();
    return { before, returned, after: window.client.getConsent(), id };
  });
  for (const c of [r.before, r.returned, r.after]) {
    assert.equal(c.gpc, true);
    assert.equal(c.sale, 'denied');
    assert.equal(c.advertising, 'denied');
    assert.equal(c.analytics, 'granted');
  }
  await waitForDistinct(collector, 1, 10000);
  const e = (await allEvents(collector)).find((x) => x.messageId === r.id);
  assert.deepEqual(e.context.consent, { analytics: 'granted', personalization: 'granted', advertising: 'denied', sale: 'denied' });
  assert.deepEqual(page.errors, []);
});

test('one device across subdomains: the cookie on the registrable domain wins over per-origin storage', { timeout: 60000 }, async (t) => {
  const { collector, context } = await setup(t, [], {
    browserOptions: { args: ['--host-resolver-rules=MAP *.example.test 127.0.0.1'] },
  });
  const shopUrl = collector.url.replace('127.0.0.1', 'shop.example.test');
  const wwwUrl = collector.url.replace('127.0.0.1', 'www.example.test');
  const shop = await context.newPage();
  await gotoSdk(shop, shopUrl, PENDING);
  const device = await shop.evaluate(async () => {
    window.client.setConsent({ analytics: 'granted' });
    window.client.track('On Shop');
    await window.client.flush();
    return window.client.getIdentity().deviceId;
  });
  assert.match(device, UUID);
  const [cookie] = (await context.cookies()).filter((c) => c.name === 'tl_did');
  assert.equal(cookie.domain, '.example.test', 'set on the registrable domain');
  assert.equal(cookie.path, '/');
  assert.equal(cookie.sameSite, 'Lax');
  assert.equal(cookie.secure, false, 'http page: no Secure');
  const days = (cookie.expires * 1000 - Date.now()) / 86400000;
  assert.ok(days > 394 && days <= 395, `expires with the device id (${days.toFixed(2)} days)`);

  const www = await context.newPage();
  await gotoSdk(www, wwwUrl, PENDING);
  const onWww = await www.evaluate(async () => {
    const hadLocal = localStorage.getItem('threadline.did');
    window.client.track('On WWW');
    await window.client.flush();
    return { identity: window.client.getIdentity(), consent: window.client.getConsent(), hadLocal, local: localStorage.getItem('threadline.did') };
  });
  assert.equal(onWww.identity.deviceId, device, 'the same device on www');
  assert.equal(onWww.consent.analytics, 'granted', 'and the consent given on shop');
  assert.match(onWww.local, new RegExp(`^1\\.${device}\\.`), "www's own fallback copy follows the cookie");
  await waitForDistinct(collector, 3, 10000); // On Shop, the consent change, On WWW
  const events = await allEvents(collector);
  assert.deepEqual(new Set(events.map((e) => e.anonymousId)), new Set([device]));
  assert.deepEqual(new Set(events.map((e) => new URL(e.context.page.url).hostname)), new Set(['shop.example.test', 'www.example.test']));

  await www.evaluate(() => window.client.setConsent({ analytics: 'denied' }));
  assert.deepEqual((await context.cookies()).filter((c) => c.name === 'tl_did'), [], 'a denial on www deletes the shared cookie');

  // shop still has its per-origin copy of the record: it must not bring the
  // id back. The next page view on shop honours the denial made on www.
  await shop.close();
  const requests = batchRequests(context);
  const again = await context.newPage();
  await again.addInitScript(script(INSTRUMENT, VISIBILITY));
  await gotoSdk(again, shopUrl, PENDING);
  const after = await again.evaluate(async () => {
    window.client.track('After Denial Elsewhere');
    await window.client.flush();
    return { identity: window.client.getIdentity(), consent: window.client.getConsent() };
  });
  assert.equal(after.identity.deviceId, null, 'no device id comes back from the stale copy');
  assert.equal(after.consent.analytics, 'denied');
  await hideAndShow(again);
  await again.waitForTimeout(500);
  assert.deepEqual(await stored(again), NOTHING, "shop's stale copies are deleted too");
  assert.deepEqual(requests, [], 'nothing is sent');
  assert.deepEqual([...www.errors || [], ...again.errors || []], []);
});

test('the device cookie is written when the record changes, never per event or page view', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t);
  const page = await open(FAST, { initScript: script(INSTRUMENT, VISIBILITY) });
  const first = await page.evaluate(() => window.__watch.cookieWrites);
  assert.equal(first, 1, 'written once, when the device id was created');
  const loop = await page.evaluate(async () => {
    const before = window.__watch.cookieWrites;
    for (let i = 0; i < 200; i++) window.client.track('Cookie Test', { i });
    const inLoop = window.__watch.cookieWrites - before;
    await window.client.flush();
    window.__setVisibility('hidden');
    window.__setVisibility('visible');
    window.client.setConsent({ analytics: 'granted' }); // no change: no write
    window.client.identify('u-1', { plan: 'pro' });
    return { inLoop, total: window.__watch.cookieWrites - before };
  });
  assert.deepEqual(loop, { inLoop: 0, total: 0 });
  await waitForDistinct(collector, 201, 20000);
  await page.reload();
  await page.waitForFunction(() => window.sdkLoaded === true);
  await page.evaluate(() => window.clientReady);
  const next = await page.evaluate(async () => {
    window.client.track('Next Page');
    await window.client.flush();
    return { writes: window.__watch.cookieWrites, id: window.client.getIdentity() };
  });
  assert.equal(next.writes, 0, 'the next page view reads the cookie and writes nothing');
  // A change of consent is a change of the record: one write.
  const changed = await page.evaluate(() => {
    window.client.setConsent({ personalization: 'denied' });
    return { writes: window.__watch.cookieWrites, cookie: document.cookie };
  });
  assert.equal(changed.writes, 1);
  assert.match(changed.cookie, /tl_did=1\.[0-9a-f-]{36}\.\d+\.\d+\.gdgg/);
  assert.deepEqual(page.errors, []);
});

// ---- IAB TCF ------------------------------------------------------------------

const idMap = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [i + 1, { id: i + 1, name: `p${i + 1}`, description: '' }]));
const GVL_JSON = {
  gvlSpecificationVersion: 3, vendorListVersion: 1, tcfPolicyVersion: 5, lastUpdated: '2026-01-01T00:00:00Z',
  purposes: idMap(11), specialPurposes: idMap(2), features: idMap(3), specialFeatures: idMap(2), stacks: {}, dataCategories: {},
  vendors: { 1: { id: 1, name: 'V', purposes: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], legIntPurposes: [], flexiblePurposes: [], specialPurposes: [], features: [], specialFeatures: [] } },
};

/** A TCF v2.3 TC string (policy version 5, disclosed vendors) with consent to `purposes`. */
function tcString(purposes) {
  const gvl = new GVL(structuredClone(GVL_JSON));
  gvl.clone = () => gvl;
  const m = new TCModel(gvl);
  m.cmpId = 10;
  m.cmpVersion = 1;
  m.created = new Date();
  m.lastUpdated = new Date();
  m.purposeConsents.set(purposes);
  m.vendorConsents.set([1]);
  m.vendorsDisclosed.set([1]);
  return TCString.encode(m, { segments: [Segment.CORE, Segment.VENDORS_DISCLOSED] });
}

/**
 * A CMP stub: answers `addEventListener` at once with `first` (or not at all)
 * and keeps the callback in `window.__tcf.cb` for a later answer.
 */
function cmpStub(first) {
  const tcf = (window.__tcf = { calls: [], cb: null });
  window.__tcfapi = (command, version, cb, arg) => {
    tcf.calls.push([command, version, arg ?? null]);
    if (command === 'addEventListener') {
      tcf.cb = cb;
      if (first) cb({ ...first, listenerId: 3 }, true);
    } else if (command === 'removeEventListener') {
      cb(true);
    }
  };
}

test('TCF: a CMP choice is taken on useractioncomplete, not while its dialogue is shown', { timeout: 60000 }, async (t) => {
  const { collector, context, open } = await setup(t);
  const requests = batchRequests(context);
  const everything = tcString([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const choice = tcString([1, 5, 6, 8]); // analytics and personalization, not advertising
  // The dialogue is open: its status must not count, even with a string that grants everything.
  const first = { eventStatus: 'cmpuishown', gdprApplies: true, tcString: everything };
  const page = await open(PENDING, { initScript: { content: `(${cmpStub})(${JSON.stringify(first)});` } });
  const held = await page.evaluate(() => ({ id: window.client.track('Before Choice'), consent: window.client.getConsent() }));
  assert.equal(held.consent.analytics, 'pending', 'cmpuishown is not a choice');
  await page.waitForTimeout(500);
  assert.equal(requests.length, 0);

  const consent = await page.evaluate((tc) => {
    window.__tcf.cb({ eventStatus: 'useractioncomplete', gdprApplies: true, tcString: tc, listenerId: 3 }, true);
    return window.client.getConsent();
  }, choice);
  assert.deepEqual(consent, { analytics: 'granted', personalization: 'granted', advertising: 'denied', sale: 'pending', gpc: false });
  await page.evaluate(() => window.client.flush());
  await waitForDistinct(collector, 2, 10000);
  const events = await allEvents(collector);
  assert.equal(events.find((e) => e.messageId === held.id)?.context.consent.analytics, 'pending');
  const change = events.find((e) => e.event === 'Consent Changed');
  assert.equal(change.properties.source, 'tcf');
  assert.equal(change.properties.advertising, 'denied');

  // The CMP keeps its listener until the client shuts down.
  await page.evaluate(() => window.client.shutdown());
  assert.deepEqual(await page.evaluate(() => window.__tcf.calls), [['addEventListener', 2, null], ['removeEventListener', 2, 3]]);
  assert.deepEqual(page.errors, []);
});

test('TCF: a CMP that never answers leaves consent pending; a malformed string is refused', { timeout: 60000 }, async (t) => {
  const { collector, context, open } = await setup(t);
  const requests = batchRequests(context);
  const page = await open(PENDING, { initScript: { content: `(${cmpStub})(null);` } });
  const r = await page.evaluate(async () => {
    window.client.track('Waiting');
    await window.client.flush();
    const errors = [];
    for (const bad of ['', 'not a TC string', 'CQuMd53QuMd53AKABAENABFgAI0AAAAAAAAAAAoAAAAA'.slice(0, 12)]) {
      try {
        window.client.setConsentTcf(bad);
        errors.push(null);
      } catch (e) {
        errors.push(`${e.name}: ${e.message}`);
      }
    }
    let notString = null;
    try {
      window.client.setConsentTcf(42);
    } catch (e) {
      notString = e.name;
    }
    return { calls: window.__tcf.calls, consent: window.client.getConsent(), errors, notString, cookie: document.cookie };
  });
  assert.deepEqual(r.calls, [['addEventListener', 2, null]], 'the CMP was asked');
  t.diagnostic(`refusals: ${JSON.stringify(r.errors)}`);
  for (const e of r.errors) assert.match(e, /^TypeError: threadline: /);
  assert.equal(r.notString, 'TypeError');
  assert.equal(r.consent.analytics, 'pending', 'nothing changed');
  assert.equal(r.cookie, '');
  await page.waitForTimeout(500);
  assert.equal(requests.length, 0, 'nothing sent');
  assert.equal((await collector.stats()).received, 0);
  // A valid string from the host's own CMP integration works the same way.
  const consent = await page.evaluate((tc) => window.client.setConsentTcf(tc), tcString([1, 8]));
  assert.equal(consent.analytics, 'granted');
  assert.equal(consent.personalization, 'denied');
  assert.deepEqual(page.errors, []);
});

test('TCF: gdprApplies false grants the TCF-mapped purposes', { timeout: 60000 }, async (t) => {
  const { open } = await setup(t);
  const first = { eventStatus: 'tcloaded', gdprApplies: false };
  const page = await open(PENDING, { initScript: { content: `(${cmpStub})(${JSON.stringify(first)});` } });
  const consent = await page.evaluate(() => window.client.getConsent());
  assert.deepEqual(consent, { analytics: 'granted', personalization: 'granted', advertising: 'granted', sale: 'pending', gpc: false });
  assert.deepEqual(page.errors, []);
});
