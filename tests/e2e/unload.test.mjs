// Events still queued when the page goes away leave on pagehide /
// visibilitychange-hidden: by navigator.sendBeacon while they fit the
// browser's 64 KiB keepalive quota as they are, gzipped on the spot in
// keepalive requests when they do not; what does not fit even then is stored
// for the next page of the site.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { join } from 'node:path';

import { setup, waitFor, waitForDistinct, allEvents, clientStats, summary, PAGES } from './helpers.mjs';

// Long enough that nothing leaves by the age trigger before the page goes.
const CFG = { batch: { maxAgeMs: 60000 } };

function trackBurst(page, label, n, noise = 0) {
  // `noise` characters of random text per event make it incompressible.
  return page.evaluate(
    ({ label, n, noise }) => Array.from({ length: n }, (_, i) => {
      const props = { label, index: i };
      if (noise) props.noise = Array.from({ length: noise }, () => Math.random().toString(36).slice(2, 3)).join('');
      return window.client.track('Unload Test', props);
    }),
    { label, n, noise },
  );
}

async function expectExactly(collector, ids, ms = 20000) {
  await waitForDistinct(collector, ids.length, ms);
  const events = await allEvents(collector);
  assert.deepEqual(events.map((e) => e.messageId).sort(), [...ids].sort(), 'the collector holds exactly the tracked events');
  return collector.stats();
}

test('events tracked right before the tab is closed arrive by sendBeacon', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t);
  const page = await open(CFG);
  const ids = await trackBurst(page, 'close', 40);
  const s = await clientStats(page);
  assert.equal(s.queued, 40, 'the events are still queued');
  assert.equal(s.uploads, 0, 'nothing was sent yet');
  await page.close();
  const stats = await expectExactly(collector, ids);
  t.diagnostic(`collector: ${summary(stats)}`);
  assert.ok(stats.beaconRequests > 0, 'they came by sendBeacon');
  assert.equal(stats.requests, stats.beaconRequests, 'and only by sendBeacon');
  assert.equal(stats.duplicates, 0);
  assert.deepEqual(page.errors, []);
});

test('events tracked right before navigating to another site arrive by sendBeacon', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t);
  const page = await open(CFG);
  const ids = await trackBurst(page, 'navigate', 40);
  await page.goto('about:blank');
  const stats = await expectExactly(collector, ids);
  t.diagnostic(`collector: ${summary(stats)}`);
  assert.ok(stats.beaconRequests > 0, 'they came by sendBeacon');
  assert.equal(stats.requests, stats.beaconRequests, 'and only by sendBeacon');
  assert.deepEqual(page.errors, []);
});

test('more than the keepalive quota holds even gzipped at close: the rest is stored and sent by the next page', { timeout: 60000 }, async (t) => {
  // The collector is down for a while, so a lot piles up; it recovers just
  // before the tab is closed.
  const { collector, open } = await setup(t, ['--fail-rate', '1.0']);
  // The first failure's backoff (4-8 s) keeps the page from retrying before
  // it is closed; the next page inherits what is left of it with the queue.
  const cfg = { batch: { maxAgeMs: 60000 }, retry: { baseBackoffMs: 8000, maxBackoffMs: 8000 } };
  const page = await open(cfg);
  const ids = await trackBurst(page, 'quota', 500, 300);
  await waitFor(async () => {
    const s = await clientStats(page);
    return s.retries > 0 && s.inFlight === 0 && s.backoffUntil !== null;
  }, 10000, 'a failed upload and a long backoff');
  const s = await clientStats(page);
  assert.equal(s.queued, 500);
  assert.ok(s.queuedBytes > 4 * 64 * 1024, `queued ${s.queuedBytes} bytes, about 4 x the beacon quota`);
  await collector.faults({ failRate: 0 });
  await page.close();
  await waitFor(async () => (await collector.stats()).gzipRequests > 0, 10000, 'a gzip keepalive request');
  await new Promise((r) => setTimeout(r, 1000));
  const closing = await collector.stats();
  t.diagnostic(`after close: ${summary(closing)}`);
  assert.ok(closing.distinct > 0 && closing.distinct < ids.length, `the closing page carried part (${closing.distinct})`);

  const next = await open(cfg);
  const sn = await clientStats(next);
  t.diagnostic(`next page: adopted ${sn.adoptedQueues}, restored ${sn.restored}`);
  assert.equal(sn.adoptedQueues, 1, 'the next page adopted the stored queue');
  assert.equal(sn.restored, 500, 'all of it (what the closing page sent too: it saw no receipt)');
  await next.evaluate(() => window.client.flush());
  const stats = await expectExactly(collector, ids);
  t.diagnostic(`collector: ${summary(stats)}`);
  assert.deepEqual([...page.errors, ...next.errors], []);
});

test('a tail four times the beacon quota leaves whole at close, gzipped in keepalive requests', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t);
  const page = await open(CFG);
  const ids = await trackBurst(page, 'gzip', 1000);
  const s = await clientStats(page);
  assert.ok(s.queuedBytes > 4 * 64 * 1024, `queued ${s.queuedBytes} bytes`);
  // Full batches leave one at a time meanwhile; most of the tail is still
  // queued when the page closes.
  assert.ok(s.queued >= 800, `${s.queued} still queued`);
  await page.close();
  const stats = await expectExactly(collector, ids);
  t.diagnostic(`collector: ${summary(stats)}`);
  assert.ok(stats.gzipRequests > 0, 'gzipped');
  assert.equal(stats.duplicates, 0);
  assert.ok(stats.bytes <= 64 * 1024, `${stats.bytes} bytes of bodies on the wire`);
  assert.deepEqual(page.errors, []);
});

test('a tab hidden while the collector fails, then shown again, does not lose the beaconed events', { timeout: 60000 }, async (t) => {
  // On a tab switch the SDK hands what is queued to sendBeacon, which gives
  // no receipt. Here the collector answers that beacon with a 5xx and the
  // page lives on: the events must still be delivered later.
  // (beaconConfirmMs is shortened from its 30 s default to keep the test fast.)
  const { collector, open } = await setup(t, ['--fail-rate', '1.0']);
  const page = await open({ batch: { maxAgeMs: 60000 }, retry: { beaconConfirmMs: 2000 } }, { initScript: { path: join(PAGES, 'visibility.js') } });
  const ids = await trackBurst(page, 'hidden', 20);
  await page.evaluate(() => window.__setVisibility('hidden'));
  await waitFor(async () => (await collector.stats()).faults.failed > 0, 10000, 'the beacon to be answered with a 5xx');
  const hidden = await clientStats(page);
  assert.equal(hidden.beaconed, 20, 'the events went to sendBeacon on hide');
  await page.evaluate(() => window.__setVisibility('visible'));
  // The beacon's grace period runs out while the page is visible again.
  await waitFor(async () => (await clientStats(page)).unconfirmed === 0, 10000, 'the end of the beacon grace period');
  const after = await clientStats(page);
  t.diagnostic(`after the grace period: queued ${after.queued}, beaconed ${after.beaconed}, delivered ${after.delivered}, dropped ${JSON.stringify({ expired: after.droppedExpired, maxAttempts: after.droppedMaxAttempts, rejected: after.droppedRejected, queueFull: after.droppedQueueFull })}`);

  await collector.faults({ failRate: 0 });
  await page.evaluate(() => window.client.flush());
  const stats = await expectExactly(collector, ids, 8000);
  t.diagnostic(`collector: ${summary(stats)}`);
  assert.deepEqual(page.errors, []);
});
