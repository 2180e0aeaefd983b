// A host's mistake gets a clear exception of the right class, and the bad
// event never reaches the queue or the collector; the client keeps working.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { setup, waitForDistinct, allEvents, clientStats } from './helpers.mjs';

test('bad input throws RangeError/TypeError, is never sent, and the next event goes through', { timeout: 60000 }, async (t) => {
  const { collector, open } = await setup(t);
  const page = await open({ batch: { maxAgeMs: 200 } });
  const results = await page.evaluate(() => {
    const c = window.client;
    const circular = { a: 1 };
    circular.self = circular;
    let deep = {};
    const root = deep;
    for (let i = 0; i < 20; i++) deep = deep.x = {};
    const cases = {
      nameTooLong: () => c.track('x'.repeat(201), { ok: true }),
      propsString: () => c.track('Bad Props', 'not an object'),
      propsNumber: () => c.track('Bad Props', 42),
      propsArray: () => c.track('Bad Props', [1, 2, 3]),
      propsNull: () => c.track('Bad Props', null),
      propsDate: () => c.track('Bad Props', new Date()),
      circular: () => c.track('Circular', circular),
      bigint: () => c.track('BigInt', { n: 10n }),
      nameNotString: () => c.track(42, {}),
      nameEmpty: () => c.track('   ', {}),
      tooDeep: () => c.track('Too Deep', root),
      tooLarge: () => c.track('Too Large', { blob: 'x'.repeat(40 * 1024) }),
    };
    const out = {};
    for (const [k, f] of Object.entries(cases)) {
      try {
        out[k] = { returned: f() };
      } catch (e) {
        out[k] = { name: e.constructor.name, message: e.message };
      }
    }
    return out;
  });
  t.diagnostic(JSON.stringify(results));
  const want = {
    nameTooLong: 'RangeError',
    propsString: 'TypeError',
    propsNumber: 'TypeError',
    propsArray: 'TypeError',
    propsNull: 'TypeError',
    propsDate: 'TypeError',
    circular: 'TypeError',
    bigint: 'TypeError',
    nameNotString: 'TypeError',
    nameEmpty: 'TypeError',
    tooDeep: 'RangeError',
    tooLarge: 'RangeError',
  };
  for (const [k, cls] of Object.entries(want)) {
    assert.equal(results[k].name, cls, `${k} throws ${cls} (got ${JSON.stringify(results[k])})`);
    assert.ok(results[k].message.length > 10, `${k} has a message`);
  }
  assert.match(results.nameTooLong.message, /200/, 'the length error names the limit');
  assert.match(results.tooDeep.message, /maxPropertyDepth/);
  assert.match(results.tooLarge.message, /maxEventBytes/);
  assert.match(results.circular.message, /circular|serialis/i);

  const s = await clientStats(page);
  assert.equal(s.accepted, 0, 'nothing bad was queued');
  assert.equal(s.queued, 0);

  const id = await page.evaluate(async () => {
    const id = window.client.track('Good Event', { after: 'bad input' });
    await window.client.flush();
    return id;
  });
  assert.ok(id, 'a valid event right after is accepted');
  await waitForDistinct(collector, 1, 10000);
  const events = await allEvents(collector);
  assert.deepEqual(events.map((e) => [e.messageId, e.event]), [[id, 'Good Event']], 'only the valid event reached the collector');
  const stats = await collector.stats();
  assert.equal(stats.rejected, 0, 'the collector rejected nothing');
  assert.equal(stats.received, 1);
  const after = await clientStats(page);
  assert.equal(after.delivered, 1);
  assert.equal(after.contained, 0, 'no internal error');
  assert.deepEqual(page.errors, []);
});
