// The cost a site pays on its main thread: `track` must not touch storage or
// cookies (the queue is persisted later, once per burst; the device cookie
// only when the device record changes), the SDK keeps at
// most one timer and none at all when idle, and it ships no unload listener
// (which would keep pages out of the back/forward cache) and no eval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { setup, waitFor, waitForDistinct, clientStats, distFiles, PAGES } from './helpers.mjs';

test('200 track calls in a loop write nothing; persistence is batched; no timer left when idle', { timeout: 60000 }, async (t) => {
  // The collector answers slowly, so events stay queued past the persist
  // debounce and the batched write can be seen.
  const { collector, open } = await setup(t, ['--latency-ms', '1500']);
  const page = await open({}, { initScript: { path: join(PAGES, 'instrument.js') } }); // all defaults
  assert.ok(await page.evaluate(() => window.__watch.sdkTimeoutsCreated >= 0 && window.__watch.listeners.length > 0), 'instrumented');

  const loop = await page.evaluate(() => {
    const w = window.__watch;
    const before = { setItem: w.setItem.length, removeItem: w.removeItem.length, cookies: w.cookieWrites, timers: w.sdkTimeoutsCreated };
    const ids = [];
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) ids.push(window.client.track('Hot Path', { index: i, sku: `SKU-${i}`, price: 9.99 }));
    const ms = performance.now() - t0;
    return {
      ids,
      ms,
      setItem: w.setItem.length - before.setItem,
      removeItem: w.removeItem.length - before.removeItem,
      cookies: w.cookieWrites - before.cookies,
      timersCreated: w.sdkTimeoutsCreated - before.timers,
      liveSdkTimers: w.liveSdkTimers(),
      afterLoop: w.setItem.length,
    };
  });
  t.diagnostic(`200 track calls: ${loop.ms.toFixed(2)} ms (${((loop.ms * 1000) / 200).toFixed(1)} µs each); SDK timeouts created ${loop.timersCreated}, live ${loop.liveSdkTimers}`);
  assert.equal(new Set(loop.ids).size, 200);
  assert.equal(loop.setItem, 0, 'no storage write during the loop');
  assert.equal(loop.removeItem, 0, 'no storage removal during the loop');
  assert.equal(loop.cookies, 0, 'no cookie write during the loop');
  assert.ok(loop.timersCreated <= 3, `a burst re-arms the one timer at most a few times (${loop.timersCreated})`);
  assert.equal(loop.liveSdkTimers, 1, 'one timer after the loop');

  // Later, the queue is written once per debounce period, not once per event.
  await waitFor(
    () => page.evaluate((n) => window.__watch.setItem.slice(n).some((s) => s.key.startsWith('threadline.q.')), loop.afterLoop),
    10000,
    'the batched queue write',
  );
  await page.evaluate(() => window.client.flush());
  await waitForDistinct(collector, 200, 20000);
  await waitFor(async () => (await clientStats(page)).queued === 0, 10000, 'the queue to empty');
  const writes = await page.evaluate((n) => window.__watch.setItem.slice(n), loop.afterLoop);
  const queueWrites = writes.filter((s) => s.key.startsWith('threadline.q.'));
  t.diagnostic(`storage writes after the loop: ${JSON.stringify(writes)}`);
  assert.ok(queueWrites.length >= 1 && queueWrites.length <= 4, `the queue was written in a few batched writes (${queueWrites.length})`);

  // Delivered and idle: no SDK timer stays armed (a debounce may still run out).
  await waitFor(() => page.evaluate(() => window.__watch.liveSdkTimers() === 0), 5000, 'no SDK timer pending when idle');
  const idle = await page.evaluate(() => ({ created: window.__watch.sdkTimeoutsCreated, live: window.__watch.liveSdkTimers() }));
  // Stay idle a little longer than the persist debounce: nothing re-arms.
  await page.waitForTimeout(1500);
  const later = await page.evaluate(() => ({ created: window.__watch.sdkTimeoutsCreated, live: window.__watch.liveSdkTimers() }));
  const w = await page.evaluate(() => ({ created: window.__watch.sdkTimeoutsCreated, cleared: window.__watch.sdkTimeoutsCleared, fired: window.__watch.sdkTimeoutsFired }));
  t.diagnostic(`SDK timeouts over the test: ${JSON.stringify(w)}`);
  assert.deepEqual(later, idle, 'no timer is created while idle');
  assert.equal(later.live, 0);
  assert.equal(w.created, w.cleared + w.fired, 'every SDK timeout fired or was cleared');
  // The device cookie is written when the device id is created (at start,
  // consent being granted by default), never again without a change.
  assert.equal(await page.evaluate(() => window.__watch.cookieWrites), 1, 'the SDK wrote its cookie once, at start');
  assert.deepEqual(page.errors, []);
});

test('no unload/beforeunload listener, no eval or new Function: in the shipped files and at run time', { timeout: 60000 }, async (t) => {
  const files = distFiles();
  assert.ok(files.some((f) => f.name.endsWith('.wasm')) && files.some((f) => f.name === 'index.js'));
  for (const { name, bytes } of files) {
    const text = bytes.toString('latin1'); // wasm strings are plain bytes in its data section
    assert.doesNotMatch(text, /\bunload\b|beforeunload|onunload/, `${name} mentions no unload event`);
    if (name.endsWith('.js')) {
      assert.doesNotMatch(text, /\beval\s*\(/, `${name} has no eval(`);
      assert.doesNotMatch(text, /new\s+Function\s*\(/, `${name} has no new Function(`);
      assert.doesNotMatch(text, /[^.\w]Function\s*\(/, `${name} calls no Function(`);
    }
  }

  const { collector, open } = await setup(t);
  const page = await open({ batch: { maxAgeMs: 200 } }, { initScript: { path: join(PAGES, 'instrument.js') } });
  await page.evaluate(async () => {
    for (let i = 0; i < 20; i++) window.client.track('Listener Test', { i });
    await window.client.flush();
  });
  await waitForDistinct(collector, 20, 10000);
  const w = await page.evaluate(() => ({ listeners: window.__watch.listeners.filter((l) => l.sdk).map((l) => l.type), evals: window.__watch.evals }));
  t.diagnostic(`SDK listeners: ${w.listeners.join(', ')}`);
  assert.ok(w.listeners.includes('pagehide') && w.listeners.includes('visibilitychange'), 'the SDK uses pagehide and visibilitychange');
  assert.ok(!w.listeners.some((l) => /unload/.test(l)), 'and no unload/beforeunload listener');
  assert.equal(w.evals, 0, 'nothing was evaluated from a string');
  assert.deepEqual(page.errors, []);
});
