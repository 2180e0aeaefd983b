// Several tabs of one site share localStorage: each keeps its own stored
// queue under its tab id, guarded by a Web Lock while it lives, and a tab
// adopts the stored queue of a tab that is gone. No event may be sent by two
// tabs, and no event of a closed tab may be lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { setup, waitFor, waitForDistinct, allEvents, clientStats, summary } from './helpers.mjs';

/** Tracks `n` events tagged with `tab`, 10 at a time, and returns their ids. */
function trackMany(page, tab, n, gapMs = 15) {
  return page.evaluate(
    async ({ tab, n, gapMs }) => {
      const ids = [];
      for (let i = 0; i < n; i++) {
        ids.push(window.client.track('Tab Test', { tab, index: i }));
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, gapMs));
      }
      return ids;
    },
    { tab, n, gapMs },
  );
}

/** The localStorage keys holding stored queues (`threadline.q.<tab>`). */
function storedQueues(page) {
  return page.evaluate(() =>
    Object.keys(localStorage)
      .filter((k) => k.startsWith('threadline.q.'))
      .map((k) => ({ key: k, events: (localStorage.getItem(k).match(/"id":/g) || []).length })),
  );
}

/**
 * Waits until the collector has seen no new request for `quietMs`: a closing
 * tab's beacon is sent asynchronously and may land after the test moved on
 * (say, after it switched the faults off, when it would be accepted).
 */
async function quiet(collector, quietMs = 1000, maxMs = 10000) {
  const end = Date.now() + maxMs;
  let last = (await collector.stats()).requests;
  let since = Date.now();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    const now = (await collector.stats()).requests;
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return;
    }
  }
}

async function expectExactly(collector, idsByTab) {
  const all = Object.values(idsByTab).flat();
  await waitForDistinct(collector, all.length, 60000);
  const events = await allEvents(collector);
  const stats = await collector.stats();
  const stored = events.map((e) => e.messageId);
  assert.equal(new Set(all).size, all.length, 'messageIds are unique');
  assert.deepEqual([...stored].sort(), [...all].sort(), 'the collector holds exactly the tracked events');
  for (const [tab, ids] of Object.entries(idsByTab)) {
    const mine = new Set(ids);
    assert.ok(
      events.filter((e) => mine.has(e.messageId)).every((e) => e.properties.tab === tab),
      `events of ${tab} carry their tab`,
    );
  }
  return stats;
}

test('two tabs tracking at once: every event arrives, none is sent by both tabs', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t);
  // Long enough that tab A's events are stored, not yet sent, when B opens.
  const cfg = { batch: { maxAgeMs: 2000 }, queue: { persistDebounceMs: 200 } };
  const a = await open(cfg);
  const first = await trackMany(a, 'A', 40, 0);
  await waitFor(async () => (await storedQueues(a)).some((q) => q.events === 40), 10000, 'tab A to store its queue');
  assert.equal((await collector.stats()).requests, 0, 'tab A has sent nothing yet');

  // Tab B starts while A is alive with a stored queue: B must leave it alone.
  const b = await open(cfg);
  const [sa, sb] = [await clientStats(a), await clientStats(b)];
  assert.ok(sa.webLocks && sb.webLocks, 'Web Locks are available');
  assert.notEqual(sa.tab, sb.tab, 'each tab has its own id');
  assert.equal(sb.adoptedQueues, 0, 'tab B did not adopt the queue of live tab A');
  assert.equal(sb.restored, 0, 'tab B restored nothing');

  const [ra, rb] = await Promise.all([trackMany(a, 'A', 300), trackMany(b, 'B', 300)]);
  await Promise.all([a.evaluate(() => window.client.flush()), b.evaluate(() => window.client.flush())]);
  const stats = await expectExactly(collector, { A: [...first, ...ra], B: rb });
  t.diagnostic(`collector: ${summary(stats)}`);
  assert.equal(stats.duplicates, 0, 'no event was sent twice');
  assert.equal(stats.distinct, 640);
  for (const p of [a, b]) {
    await waitFor(async () => (await clientStats(p)).queued === 0, 10000, 'the tab queue to empty');
    const s = await clientStats(p);
    assert.equal(s.adoptedQueues, 0);
    assert.equal(s.contained, 0);
    assert.deepEqual(p.errors, []);
  }
  assert.deepEqual(await storedQueues(a), [], 'no stored queue is left');
});

test('a tab opened by window.open (sessionStorage copied) takes its own id and queue', { timeout: 60000 }, async (t) => {
  const { collector, context, open } = await setup(t);
  const cfg = { batch: { maxAgeMs: 2000 }, queue: { persistDebounceMs: 200 } };
  const a = await open(cfg);
  const first = await trackMany(a, 'A', 40, 0);
  await waitFor(async () => (await storedQueues(a)).some((q) => q.events === 40), 10000, 'tab A to store its queue');

  // Records what the new tab found in its (copied) sessionStorage at start.
  await context.addInitScript(() => {
    window.__initialTab = sessionStorage.getItem('threadline.tab');
  });
  const popup = context.waitForEvent('page');
  await a.evaluate((cfg) => window.open(`/sdk.html#cfg=${encodeURIComponent(JSON.stringify(cfg))}`, '_blank'), cfg);
  const b = await popup;
  b.errors = [];
  b.on('pageerror', (e) => b.errors.push(String(e)));
  await b.waitForFunction(() => window.sdkLoaded === true);
  await b.evaluate(() => window.clientReady);
  const [sa, sb] = [await clientStats(a), await clientStats(b)];
  assert.equal(await b.evaluate(() => window.__initialTab), sa.tab, 'the new tab started with a copy of the opener’s tab id');
  assert.notEqual(sb.tab, sa.tab, 'the copied tab id is in use, so the new tab picked another');
  assert.equal(sb.restored, 0, 'the new tab did not take the opener’s queue');
  assert.equal(sb.adoptedQueues, 0);

  const [ra, rb] = await Promise.all([trackMany(a, 'A', 100), trackMany(b, 'B', 100)]);
  await Promise.all([a.evaluate(() => window.client.flush()), b.evaluate(() => window.client.flush())]);
  const stats = await expectExactly(collector, { A: [...first, ...ra], B: rb });
  t.diagnostic(`collector: ${summary(stats)}`);
  assert.equal(stats.duplicates, 0, 'no event was sent twice');
  assert.deepEqual([...a.errors, ...b.errors], []);
});

test('a closed tab’s undelivered queue is adopted and sent by the next tab', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t, ['--fail-rate', '1.0']);
  const cfg = { batch: { maxAgeMs: 60000 } };
  const a = await open(cfg);
  const ids = await trackMany(a, 'A', 50, 0);
  const sa = await clientStats(a);
  assert.equal(sa.queued, 50);
  await a.close();
  await quiet(collector);
  // Whatever the closing tab tried (a beacon) failed: nothing is stored.
  assert.equal((await collector.stats()).distinct, 0, 'nothing got through while failing');

  await collector.faults({ failRate: 0 });
  const b = await open(cfg);
  const sb = await clientStats(b);
  t.diagnostic(`closed tab ${sa.tab}; new tab ${sb.tab}: adopted ${sb.adoptedQueues}, restored ${sb.restored}`);
  assert.notEqual(sb.tab, sa.tab);
  assert.equal(sb.adoptedQueues, 1, 'the new tab adopted the closed tab’s queue');
  assert.equal(sb.restored, 50, 'with all of its events');
  assert.deepEqual(await storedQueues(b).then((q) => q.filter((x) => x.key === `threadline.q.${sa.tab}`)), [], 'the closed tab’s key is gone');
  await b.evaluate(() => window.client.flush());
  const stats = await expectExactly(collector, { A: ids });
  t.diagnostic(`collector: ${summary(stats)}`);
  assert.deepEqual(b.errors, []);
});

test('two tabs opening at once adopt a closed tab’s queue once between them', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t, ['--fail-rate', '1.0']);
  const cfg = { batch: { maxAgeMs: 60000 } };
  const a = await open(cfg);
  const ids = await trackMany(a, 'A', 50, 0);
  await a.close();
  // Its beacon at close must meet the failing collector, not the healed one:
  // otherwise it delivers, and the adopting tab's send is a duplicate.
  await quiet(collector);
  await collector.faults({ failRate: 0 });

  const [b, c] = await Promise.all([open(cfg), open(cfg)]);
  const [sb, sc] = [await clientStats(b), await clientStats(c)];
  t.diagnostic(`adopted: B ${sb.adoptedQueues} (${sb.restored} events), C ${sc.adoptedQueues} (${sc.restored} events)`);
  assert.equal(sb.adoptedQueues + sc.adoptedQueues, 1, 'exactly one tab adopted the queue');
  assert.equal(sb.restored + sc.restored, 50);
  await Promise.all([b.evaluate(() => window.client.flush()), c.evaluate(() => window.client.flush())]);
  const stats = await expectExactly(collector, { A: ids });
  assert.equal(stats.duplicates, 0, 'no event was sent by both tabs');
  assert.deepEqual([...b.errors, ...c.errors], []);
});

test('a crashed tab’s stored queue is adopted by the next tab', { timeout: 60000 }, async (t) => {
  const { collector, context, open } = await setup(t);
  const cfg = { batch: { maxAgeMs: 60000 }, queue: { persistDebounceMs: 200 } };
  const a = await open(cfg);
  const ids = await trackMany(a, 'A', 50, 0);
  await waitFor(async () => (await storedQueues(a)).some((q) => q.events === 50), 10000, 'tab A to store its queue');
  const { tab } = await clientStats(a);
  // A renderer crash: no pagehide, no beacon, no last write.
  const crashed = new Promise((r) => a.once('crash', r));
  const cdp = await context.newCDPSession(a);
  cdp.send('Page.crash').catch(() => {});
  await crashed;
  assert.equal((await collector.stats()).requests, 0, 'the crashed tab sent nothing');

  const b = await open(cfg);
  const sb = await clientStats(b);
  t.diagnostic(`crashed tab ${tab}; new tab ${sb.tab}: adopted ${sb.adoptedQueues}, restored ${sb.restored}`);
  assert.equal(sb.adoptedQueues, 1, 'the new tab adopted the crashed tab’s queue');
  assert.equal(sb.restored, 50);
  await b.evaluate(() => window.client.flush());
  const stats = await expectExactly(collector, { A: ids });
  assert.equal(stats.duplicates, 0);
  assert.deepEqual(b.errors, []);
});
