// Storage that fails must not break the page or delivery: the SDK goes on
// in memory, counts the failures, and still sends everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { setup, waitForDistinct, allEvents, clientStats } from './helpers.mjs';

// Uncaught errors and unhandled rejections of the page, from its start.
function recordPageErrors() {
  window.__errors = [];
  addEventListener('error', (e) => window.__errors.push(`error: ${e.message}`));
  addEventListener('unhandledrejection', (e) => window.__errors.push(`unhandledrejection: ${e.reason}`));
}

function quotaExceeded() {
  recordPageErrors();
  window.__setItemCalls = 0;
  Storage.prototype.setItem = function () {
    window.__setItemCalls++;
    throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
  };
}

function storageDenied() {
  recordPageErrors();
  // What a sandboxed iframe or a browser blocking site data does.
  for (const name of ['localStorage', 'sessionStorage']) {
    Object.defineProperty(window, name, {
      configurable: true,
      get() {
        throw new DOMException(`Failed to read the '${name}' property from 'Window': Access is denied for this document.`, 'SecurityError');
      },
    });
  }
}

/** An init script running `fn` with `recordPageErrors` in scope. */
function script(fn) {
  return { content: `${recordPageErrors};\n(${fn})();` };
}

async function trackAndDeliver(t, page, collector, n) {
  const result = await page.evaluate(async (n) => {
    const ids = [];
    let thrown = null;
    try {
      for (let i = 0; i < n; i++) ids.push(window.client.track('Storage Test', { index: i }));
      await window.client.flush();
    } catch (e) {
      thrown = `${e.name}: ${e.message}`;
    }
    return { ids, thrown };
  }, n);
  assert.equal(result.thrown, null, 'no call threw');
  await waitForDistinct(collector, n, 20000);
  const events = await allEvents(collector);
  assert.deepEqual(events.map((e) => e.messageId).sort(), [...result.ids].sort(), 'every event arrived');
  return result.ids;
}

test('localStorage.setItem throwing QuotaExceededError: no exception, events arrive, failures counted', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t);
  const page = await open({ batch: { maxAgeMs: 300 }, queue: { persistDebounceMs: 50 } }, { initScript: script(quotaExceeded) });
  assert.equal(
    await page.evaluate(() => { try { localStorage.setItem('x', '1'); return null; } catch (e) { return e.name; } }),
    'QuotaExceededError',
    'the instrumentation works',
  );
  await trackAndDeliver(t, page, collector, 120);
  const s = await clientStats(page);
  t.diagnostic(`client: storageFailures ${s.storageFailures}, storageAvailable ${s.storageAvailable}, setItem calls ${await page.evaluate(() => window.__setItemCalls)}`);
  assert.ok(s.storageFailures > 0, `storage failures are counted (${s.storageFailures})`);
  assert.equal(s.contained, 0, 'no internal error had to be contained');
  assert.equal(s.delivered, 120);
  assert.deepEqual(await page.evaluate(() => window.__errors), []);
  assert.deepEqual(page.errors, []);
});

test('localStorage and sessionStorage that throw on access: the SDK works in memory', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t);
  const page = await open({ batch: { maxAgeMs: 300 } }, { initScript: script(storageDenied) });
  assert.equal(
    await page.evaluate(() => { try { return typeof localStorage; } catch (e) { return e.name; } }),
    'SecurityError',
    'the instrumentation works',
  );
  await trackAndDeliver(t, page, collector, 120);
  const s = await clientStats(page);
  t.diagnostic(`client: storageFailures ${s.storageFailures}, storageAvailable ${s.storageAvailable}`);
  assert.equal(s.storageAvailable, false, 'the client knows it has no storage');
  assert.equal(s.contained, 0, 'no internal error had to be contained');
  assert.equal(s.delivered, 120);
  assert.deepEqual(await page.evaluate(() => window.__errors), []);
  assert.deepEqual(page.errors, []);
});
