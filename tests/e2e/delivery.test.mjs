// The acceptance test of reliable delivery: 1,000 events sent through a
// misbehaving collector (5xx, 429 with Retry-After, latency, dropped
// connections), across a reload and an offline period, must all arrive:
// exactly the messageIds `track` returned, exactly once each in the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { setup, waitFor, waitForDistinct, waitForClient, allEvents, clientStats, summary, PAGES } from './helpers.mjs';

const TOTAL = 1000;
const RELOAD_AT = 400; // events 0..399 before the reload
const OFFLINE_AT = 700; // 400..699 after it, 700..999 while offline

// What a real site might configure: small batches by age, a modest retry cap.
const CFG = { batch: { maxEvents: 50, maxAgeMs: 500 }, retry: { maxBackoffMs: 5000 } };

/**
 * Tracks events `from..to-1` in the page, `per` at a time with `gapMs`
 * between bursts (the shape of a busy page), and returns their messageIds.
 */
function trackRange(page, run, from, to, per = 20, gapMs = 20) {
  return page.evaluate(
    async ({ run, from, to, per, gapMs }) => {
      const ids = [];
      for (let i = from; i < to; ) {
        for (const end = Math.min(to, i + per); i < end; i++) {
          ids.push(window.client.track('Delivery Test', { run, index: i, phase: i < 400 ? 'before' : i < 700 ? 'after' : 'offline' }));
        }
        if (i < to) await new Promise((r) => setTimeout(r, gapMs));
      }
      return ids;
    },
    { run, from, to, per, gapMs },
  );
}

test('1,000 events survive faults, a reload and an offline period: exactly once each', { timeout: 150000 }, async (t) => {
  const { collector, context, open } = await setup(t, [
    '--fail-rate', '0.3',
    '--rate-limit-rate', '0.05',
    '--retry-after-secs', '1',
    '--latency-ms', '50',
    '--latency-jitter-ms', '100',
    '--drop-rate', '0.03',
  ]);
  const { seed } = await collector.faults({});
  t.diagnostic(`collector fault seed ${seed} (replay with --seed ${seed})`);
  const run = `run-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const page = await open(CFG, { initScript: { path: join(PAGES, 'netlog.js') } });
  const ids = [];

  // Phase 1: 0..(RELOAD_AT - 250) paced; wait until some have been delivered.
  const lastPaced = RELOAD_AT - 250;
  ids.push(...(await trackRange(page, run, 0, lastPaced)));
  await waitForDistinct(collector, 1, 30000, 'a first delivery before the reload');
  // The reload comes once what was sent so far is delivered (so normally no
  // Retry-After forbids the beacon) and in the same task as the last 250
  // events: they are certainly still queued when the page goes away.
  await page.waitForFunction(() => {
    const s = window.client.stats();
    return s.queued === 0 && s.lastStatus === 200 && s.backoffUntil === null;
  }, null, { timeout: 30000, polling: 50 });
  const reloaded = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame(), timeout: 30000 });
  const atReload = await page.evaluate(
    ({ run, from, to }) => {
      const t = Date.now();
      const out = [];
      for (let i = from; i < to; i++) out.push(window.client.track('Delivery Test', { run, index: i, phase: 'before' }));
      const s = window.client.stats();
      location.reload();
      return { ids: out, queued: s.queued, tab: s.tab, t };
    },
    { run, from: lastPaced, to: RELOAD_AT },
  );
  ids.push(...atReload.ids);
  assert.equal(atReload.queued, 250, 'the last 250 events are queued at the reload');

  // The reloaded page (same tab) restores the stored queue and sends it.
  await reloaded;
  await waitForClient(page);
  const afterReload = await clientStats(page);
  const { beacons, fetches } = await page.evaluate(() => ({
    beacons: JSON.parse(sessionStorage.getItem('e2e.beacons') || '[]'),
    fetches: JSON.parse(sessionStorage.getItem('e2e.fetches') || '[]'),
  }));
  const answersAtReload = fetches.filter((f) => f.t >= atReload.t && f.done < Math.min(...beacons.map((b) => b.t), Infinity));
  t.diagnostic(`at reload: queued ${atReload.queued}; beacons on pagehide ${JSON.stringify(beacons)}; answers between the burst and the beacons ${JSON.stringify(answersAtReload)}; reloaded page restored ${afterReload.restored}, adopted ${afterReload.adoptedQueues}`);
  assert.ok(
    beacons.some((b) => b.ok) || fetches.some((f) => f.t >= atReload.t && f.status === 429),
    'the queued events were handed to sendBeacon on pagehide (unless a 429 just asked to wait)',
  );
  assert.ok(afterReload.restored > 0, `the reloaded page restored the stored queue (restored=${afterReload.restored})`);
  assert.equal(afterReload.tab, atReload.tab, 'the reloaded page kept its tab id (and so its stored queue)');

  // Phase 2: after the reload.
  ids.push(...(await trackRange(page, run, RELOAD_AT, OFFLINE_AT)));

  // Phase 3: offline. Events keep being tracked; uploads fail as network errors.
  await context.setOffline(true);
  ids.push(...(await trackRange(page, run, OFFLINE_AT, TOTAL)));
  // Wait until the client is backing off after a network error, far enough
  // from the end of its backoff that a prompt retry can only be the `online`
  // event's doing.
  const offline = await page.waitForFunction(() => {
    const s = window.client.stats();
    const f = window.__net.fetches;
    const last = f[f.length - 1];
    const settled = last && last.done !== null && last.error && !last.online;
    return settled && s.backoffUntil !== null && s.backoffUntil - Date.now() > 1500 && { backoffUntil: s.backoffUntil, fetches: f.length };
  }, null, { timeout: 60000, polling: 50 }).then((h) => h.jsonValue());
  const offlineFailures = await page.evaluate(() => window.__net.fetches.filter((f) => !f.online).length);
  const onlineAt = await page.evaluate(() => Date.now());
  await context.setOffline(false);
  const retry = await page.waitForFunction(({ n }) => {
    const f = window.__net.fetches;
    return f.length > n && f[n];
  }, { n: offline.fetches }, { timeout: 10000, polling: 20 }).then((h) => h.jsonValue());
  t.diagnostic(`offline: ${offlineFailures} uploads failed; back online at ${onlineAt}, backoff was until ${offline.backoffUntil}, first retry ${retry.t - onlineAt} ms later`);
  assert.ok(retry.t >= onlineAt && retry.online, 'the retry came after going online');
  assert.ok(retry.t < offline.backoffUntil, `the online event retried before the backoff ended (retry at ${retry.t}, backoff until ${offline.backoffUntil})`);

  // Everything arrives.
  assert.equal(ids.length, TOTAL);
  assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0), 'track returned a messageId for every event');
  assert.equal(new Set(ids).size, TOTAL, 'messageIds are unique');
  const stats = await waitForDistinct(collector, TOTAL, 90000);
  await page.evaluate(() => window.client.flush());
  await waitFor(async () => (await clientStats(page)).queued === 0, 30000, 'the client queue to empty');

  const events = await allEvents(collector);
  const final = await collector.stats();
  t.diagnostic(`collector: ${summary(final)}`);
  const client = await clientStats(page);
  t.diagnostic(`client (after reload): ${JSON.stringify(client)}`);
  console.log(`delivery: collector ${summary(final)}`);

  assert.equal(final.distinct, TOTAL, `collector holds exactly ${TOTAL} events (stats when first reached: ${summary(stats)})`);
  assert.equal(events.length, TOTAL);
  const stored = new Set(events.map((e) => e.messageId));
  assert.equal(stored.size, TOTAL, 'no messageId stored twice');
  const want = new Set(ids);
  const missing = ids.filter((id) => !stored.has(id));
  const extra = [...stored].filter((id) => !want.has(id));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, 'stored messageIds are exactly the tracked ones');
  assert.ok(events.every((e) => e.type === 'track' && e.event === 'Delivery Test' && e.properties.run === run), 'only this run’s events');
  const indices = events.map((e) => e.properties.index).sort((a, b) => a - b);
  assert.deepEqual(indices, Array.from({ length: TOTAL }, (_, i) => i), 'indices 0..999, each once');
  assert.ok(final.faults.failed > 0, 'the collector did inject faults');
  assert.equal(client.contained, 0, 'no internal error was contained');
  assert.deepEqual(page.errors, [], 'no page errors');
});

test('lost acknowledgements (connection dropped after the batch was stored): retried, stored once', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t, ['--drop-rate', '0.5', '--drop-phase', 'after']);
  const page = await open({ batch: { maxEvents: 25, maxAgeMs: 200 }, retry: { maxBackoffMs: 2000 } });
  const run = `drop-${Date.now()}`;
  const ids = await page.evaluate((run) => Array.from({ length: 200 }, (_, i) => window.client.track('Drop Test', { run, index: i })), run);
  const stats = await waitForDistinct(collector, 200, 45000);
  await waitFor(async () => (await clientStats(page)).queued === 0, 20000, 'the client queue to empty');
  const final = await collector.stats();
  t.diagnostic(`collector: ${summary(final)}`);
  const events = await allEvents(collector);
  assert.deepEqual(events.map((e) => e.messageId).sort(), [...ids].sort(), 'exactly the tracked events, each once');
  assert.ok(final.faults.dropped > 0, 'connections were dropped');
  assert.ok(final.duplicates > 0, 'stored batches whose answer was lost were sent again (and de-duplicated)');
  assert.equal(stats.distinct, 200);
  assert.deepEqual(page.errors, []);
});

test('a short outage across many page views loses nothing', { timeout: 60000 }, async (t) => {
  // A visitor browses a dozen pages (a few seconds) while the collector
  // answers 5xx. Inside one page the backoff spreads the 10 attempts over
  // minutes; across page loads, each load retries the restored events at
  // once, so the outage must not use up their attempts.
  const { collector, open } = await setup(t, ['--fail-rate', '1.0']);
  const page = await open({}); // the defaults: maxAttempts 10, backoff 1 s .. 60 s
  const ids = await page.evaluate(() => Array.from({ length: 10 }, (_, i) => window.client.track('Outage Test', { index: i })));
  const started = Date.now();
  const views = 12;
  const seen = [];
  for (let v = 0; v < views; v++) {
    await page.reload();
    await waitForClient(page);
    // The visitor reads the page until the SDK's first try there has failed,
    // or the page is waiting out the backoff it inherited from the page
    // before (or nothing is left to try).
    const s = await waitFor(async () => {
      const s = await clientStats(page);
      const waiting = s.backoffUntil !== null && s.backoffUntil > Date.now() && s.inFlight === 0;
      return ((s.retries > 0 && s.inFlight === 0) || waiting || s.queued === 0) && s;
    }, 10000, 'a failed try or an inherited backoff');
    seen.push({ restored: s.restored, droppedMaxAttempts: s.droppedMaxAttempts });
  }
  const outageMs = Date.now() - started;
  t.diagnostic(`outage of ${outageMs} ms over ${views} page views: ${JSON.stringify(seen)}`);
  const dropped = seen.reduce((n, s) => n + s.droppedMaxAttempts, 0);
  assert.equal(dropped, 0, `events were dropped for too many attempts during a ${outageMs} ms outage over ${views} page views: ${JSON.stringify(seen)}`);
  await collector.faults({ failRate: 0 });
  await page.evaluate(() => window.client.flush());
  await waitForDistinct(collector, ids.length, 20000, `all ${ids.length} events after a ${outageMs} ms outage`);
  const events = await allEvents(collector);
  assert.deepEqual(events.map((e) => e.messageId).sort(), [...ids].sort());
});
