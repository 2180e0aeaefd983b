// The analytics-only build (@threadline/web/lite): the same events API and
// delivery as the full build, a much smaller wasm, and the decision methods
// present but refusing with a typed error, so a page that loaded the wrong
// build finds out at once instead of silently showing defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';

import { setup, waitForClient, waitForDistinct, allEvents, DIST, summary } from './helpers.mjs';

test('the lite build tracks and delivers; decisions refuse with a typed error', { timeout: 60000 }, async (t) => {
  const { collector, context } = await setup(t);
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  const wasm = [];
  page.on('response', (r) => {
    if (r.url().endsWith('.wasm')) wasm.push(new URL(r.url()).pathname);
  });
  const cfg = { batch: { maxAgeMs: 60000 }, consent: { default: 'granted' } };
  await page.goto(`${collector.url}/sdk.html?build=lite#cfg=${encodeURIComponent(JSON.stringify(cfg))}`);
  await waitForClient(page);
  assert.deepEqual(wasm, ['/npm/dist/lite/sdk_wasm_bg.wasm'], 'the lite core, and only it');
  const full = statSync(join(DIST, 'sdk_wasm_bg.wasm')).size;
  const lite = statSync(join(DIST, 'lite', 'sdk_wasm_bg.wasm')).size;
  t.diagnostic(`wasm: full ${full} B, lite ${lite} B`);
  assert.ok(lite < full * 0.7, `the lite wasm (${lite} B) is much smaller than the full one (${full} B)`);

  const out = await page.evaluate(async () => {
    const c = window.client;
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(c.track('Lite Test', { i }));
    ids.push(c.page('Home'));
    ids.push(c.identify('user-lite', { plan: 'free' }));
    const refusal = (f) => {
      try {
        f();
        return 'no error';
      } catch (e) {
        return `${e.constructor.name} ${e.kind}`;
      }
    };
    const refused = {
      decide: refusal(() => c.decide('home')),
      decideMany: refusal(() => c.decideMany(['home'])),
      displayed: refusal(() => c.displayed({ id: 'd1', placement: 'home', offerId: 'o1' })),
      loadRules: refusal(() => c.loadRules('{}')),
    };
    const ready = await c.ready(200);
    const revision = c.rulesRevision();
    let rulesOption;
    try {
      await window.threadline.createClient({ endpoint: location.origin, writeKey: 'k', rules: { url: '/r.json' } });
      rulesOption = 'accepted';
    } catch (e) {
      rulesOption = `refused: ${e.message}`;
    }
    await c.flush();
    return { ids, refused, ready, revision, rulesOption };
  });
  assert.deepEqual(out.refused, {
    decide: 'TypeError decide.unavailable',
    decideMany: 'TypeError decide.unavailable',
    displayed: 'TypeError decide.unavailable',
    loadRules: 'TypeError rules.unavailable',
  });
  assert.equal(out.ready, false, 'ready() resolves false: no rules will ever be in use');
  assert.equal(out.revision, null);
  assert.match(out.rulesOption, /^refused: .*rules/, 'a rules option is refused, not ignored');
  await waitForDistinct(collector, out.ids.length, 15000);
  const events = await allEvents(collector);
  t.diagnostic(`collector: ${summary(await collector.stats())}`);
  assert.deepEqual(events.map((e) => e.messageId).sort(), [...out.ids].sort());
  assert.ok(events.every((e) => e.context.library.name === 'threadline-web'), 'the same library on the wire');
  assert.deepEqual(page.errors, []);
});
