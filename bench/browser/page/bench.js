// The benchmark page's script. It loads the npm package the way a site
// does (the module and its .wasm from /npm/dist/), creates a client with
// default settings, and exposes the workloads that ../run.mjs drives.
//
// Query parameters: `prefix=<storage prefix>` and `compress=0` (send bodies
// uncompressed, for the wire-size comparison).

// Taken first thing: "script start" of the time-to-ready figure.
const scriptStart = performance.now();

const params = new URLSearchParams(location.search);
const options = { endpoint: location.origin, writeKey: 'demo-write-key' };
if (params.has('prefix')) options.storagePrefix = params.get('prefix');
if (params.get('compress') === '0') options.compress = false;

const EVENT = 'Product Viewed';

// An e-commerce product view with eight properties, as a shop page sends
// it; 16 products so the strings vary a little. Built before any timing.
const PRODUCTS = Array.from({ length: 16 }, (_, i) => ({
  product_id: `507f1f77bcf86cd7994390${String(i).padStart(2, '0')}`,
  sku: `G-32-SLK-${['NVY', 'BLK', 'GRY', 'SND'][i % 4]}`,
  category: 'Apparel/Trousers',
  name: 'Tailored Silk Slacks',
  brand: 'Northwind',
  variant: `${['Navy', 'Black', 'Grey', 'Sand'][i % 4]} / ${30 + (i % 8)}`,
  price: 129.95,
  currency: 'EUR',
}));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let client;
try {
  const sdk = await import('/npm/dist/index.js');
  const imported = performance.now();
  client = await sdk.createClient(options);
  const ready = performance.now();
  window.bench = {
    ready: true,
    crossOriginIsolated: self.crossOriginIsolated === true,
    startup: { scriptStart, imported, ready },
    client, // for ad-hoc experiments from DevTools or Playwright
    stats: () => client.stats(),
    timeTracks,
    workload,
    burst,
    storedQueueKeys,
    decideTiming,
  };
} catch (e) {
  window.benchError = String(e && e.stack ? e.stack : e);
}

/**
 * Lets the SDK deliver between chunks of calls, as a page's own tasks would
 * (one setTimeout turn, then, if delivery fell behind, until at most
 * `high` events are queued): the 4 MiB queue bound must never be reached,
 * or the figures would be those of an overflowing queue.
 */
async function breathe(high) {
  await sleep(0);
  let s = client.stats();
  let maxQueued = s.queued;
  while (s.queued > high) {
    await sleep(4);
    s = client.stats();
  }
  return maxQueued;
}

/** Waits until every event is delivered (flush, then nothing queued). */
async function drain() {
  for (let i = 0; i < 3000; i++) {
    await client.flush();
    const s = client.stats();
    if (s.queued === 0 && s.inFlight === 0) return s;
    await sleep(10);
  }
  throw new Error(`events still queued: ${JSON.stringify(client.stats())}`);
}

/** Keys of stored queues (`<prefix>.q.<tab>`) still in localStorage. */
function storedQueueKeys() {
  const prefix = `${options.storagePrefix || 'threadline'}.q.`;
  const keys = [];
  for (let i = 0; i < localStorage.length; i++) {
    const k = localStorage.key(i);
    if (k && k.startsWith(prefix)) keys.push(k);
  }
  return keys;
}

/**
 * `warm` untimed calls, then `n` calls each timed on its own, then `n`
 * calls timed per chunk (no clock reads inside a chunk), `chunk` calls per
 * task. Returns the per-call durations (ms) and the per-call means of the
 * chunks (ms).
 */
async function timeTracks({ warm = 1000, n = 10000, chunk = 100, high = 1000 } = {}) {
  let k = 0;
  let maxQueued = 0;
  for (let done = 0; done < warm; done += chunk) {
    for (let j = 0; j < chunk; j++, k++) client.track(EVENT, PRODUCTS[k & 15]);
    maxQueued = Math.max(maxQueued, await breathe(high));
  }
  const perCall = new Array(n);
  for (let i = 0; i < n; ) {
    for (let j = 0; j < chunk && i < n; j++, i++, k++) {
      const p = PRODUCTS[k & 15];
      const t0 = performance.now();
      client.track(EVENT, p);
      perCall[i] = performance.now() - t0;
    }
    maxQueued = Math.max(maxQueued, await breathe(high));
  }
  const chunkMeans = [];
  for (let i = 0; i < n; i += chunk) {
    const t0 = performance.now();
    for (let j = 0; j < chunk; j++, k++) client.track(EVENT, PRODUCTS[k & 15]);
    chunkMeans.push((performance.now() - t0) / chunk);
    maxQueued = Math.max(maxQueued, await breathe(high));
  }
  const stats = await drain();
  return { perCall, chunkMeans, calls: k, maxQueued, stats };
}

/**
 * The main-thread workload: `n` tracks, `chunk` per task, then everything
 * delivered and the stored queue cleared. With `noop`, the same loop calls
 * a function that does nothing: the harness's own cost.
 */
async function workload({ n = 10000, chunk = 100, high = 1000, noop = false } = {}) {
  const track = noop ? () => undefined : (e, p) => client.track(e, p);
  let maxQueued = 0;
  for (let i = 0; i < n; ) {
    for (let j = 0; j < chunk && i < n; j++, i++) track(EVENT, PRODUCTS[i & 15]);
    maxQueued = Math.max(maxQueued, await breathe(high));
  }
  const stats = await drain();
  return { maxQueued, stats, storedQueues: storedQueueKeys() };
}

/** `n` tracks in one task, then `flush()` until delivered. */
async function burst({ n = 1000 } = {}) {
  for (let i = 0; i < n; i++) client.track(EVENT, PRODUCTS[i & 15]);
  const stats = await drain();
  return { stats, storedQueues: storedQueueKeys() };
}

// ---------- decide ----------

/**
 * The rules artifact of sdk-core/benches/core.rs `decide_artifact(n)`, built
 * the same way, so the native and the browser figures measure the same
 * thing: 20 audiences (history counts, traits, days since the last order,
 * cart adds by category), `n` offers on `home` each conditioned on two views
 * of its product in 7 days and an audience, suppressed once the product was
 * ordered, a third of them capped, a fifth scheduled; an A/B test on `home`.
 */
function decideArtifact(n) {
  const audiences = Array.from({ length: 20 }, (_, i) => {
    const id = `a${i}`;
    switch (i % 4) {
      case 0: return { id, condition: { '>=': [{ count: ['Product Viewed', '24h'] }, i % 5] } };
      case 1: return { id, condition: { in: [{ var: 'profile.plan' }, ['pro', 'team']] } };
      case 2: return { id, condition: { '<': [{ daysSince: { lastSeen: ['Order Completed'] } }, 30 + i] } };
      default: return { id, condition: { '>': [{ count: ['Added to Cart', '7d', { category: 'trousers' }] }, 0] } };
    }
  });
  const offers = Array.from({ length: n }, (_, i) => {
    const product = `p${i % 200}`;
    const o = {
      id: `offer-${String(i).padStart(4, '0')}`, placement: 'home', priority: (i * 7919) % 100,
      content: { title: `Offer ${i}`, image: `/img/${i}.jpg`, productId: product },
      condition: { and: [
        { '>=': [{ count: ['Product Viewed', '7d', { productId: product }] }, 2] },
        { inAudience: `a${i % 20}` },
      ] },
      suppress: { '>': [{ count: ['Order Completed', 'lifetime', { productId: product }] }, 0] },
    };
    if (i % 3 === 0) o.cap = { max: 3, per: 'day' };
    if (i % 5 === 0) o.schedule = { daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri'], timeOfDay: { from: '08:00', to: '22:00' } };
    return o;
  });
  return {
    version: 1, bucketing: 'murmur3_x86_32/v1',
    placements: [{ id: 'home', default: { id: 'welcome', content: { title: 'Welcome' } } }],
    audiences, offers,
    experiments: [{ id: 'home-test', placement: 'home', holdout: 0.05,
      variants: [{ id: 'control', weight: 1 }, { id: 'b', weight: 1, content: { title: 'B' } }] }],
  };
}

/**
 * The history of a returning shopper, as in the native benchmark but a few
 * hundred events: traits, 300 product views over 20 products (15 each), an
 * order of p3 and p9, a cart add, and 50 impressions (every third offer).
 */
function recordShopper() {
  client.identify('bench-shopper', { plan: 'pro', country: 'DE' });
  for (let k = 0; k < 300; k++) {
    client.track('Product Viewed', { productId: `p${(k * 7) % 20}`, category: 'trousers', price: 89.5 });
  }
  client.track('Order Completed', { products: [{ productId: 'p3' }, { productId: 'p9' }] });
  client.track('Added to Cart', { productId: 'p1', category: 'trousers' });
  for (let k = 0; k < 50; k++) {
    const offerId = `offer-${String(k * 3).padStart(4, '0')}`;
    client.displayed({ decisionId: `bench-${k}`, placement: 'home', offerId, isDefault: false });
  }
  return 300 + 4 + 50;
}

/**
 * µs per `client.decide('home', { max: 3 })` with an artifact of `n` offers
 * loaded inline (for a device in A/B `variant`, else `{ retry }`): `warm` untimed calls, `calls` calls each timed on its own,
 * then `chunks` chunks of `chunk` calls timed as a whole (per-call means).
 * `returning`: with the shopper's history; otherwise an empty one (no
 * offer qualifies, every condition is evaluated: the worst case).
 */
async function decideTiming({ n, returning = true, variant, warm = 300, calls = 2000, chunk = 20, chunks = 100 } = {}) {
  if (typeof client.decide !== 'function') throw new Error('this npm build has no decide()');
  const text = JSON.stringify(decideArtifact(n));
  const loaded = client.loadRules(text);
  if (!loaded) throw new Error(`loadRules refused the ${n}-offer artifact`);
  const opts = { max: 3 };
  // The A/B test's variant depends on the device id, which is random here:
  // the caller retries with a new device until it has the native one's.
  const probe = client.decide('home', opts)[0];
  if (variant && probe?.variantId !== variant) return { retry: true, variantId: probe?.variantId ?? null };
  const events = returning ? recordShopper() : 0;
  await drain();
  const sample = client.decide('home', opts);
  if (!sample.length) throw new Error('decide returned nothing');
  for (let i = 0; i < warm; i++) client.decide('home', opts);
  const perCall = new Array(calls);
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    client.decide('home', opts);
    perCall[i] = performance.now() - t0;
    if ((i & 63) === 63) await sleep(0); // let the SDK's own tasks run, as a page would
  }
  const chunkMeans = [];
  for (let c = 0; c < chunks; c++) {
    const t0 = performance.now();
    for (let j = 0; j < chunk; j++) client.decide('home', opts);
    chunkMeans.push((performance.now() - t0) / chunk);
    await sleep(0);
  }
  return {
    artifactBytes: text.length,
    events,
    sample: sample.map((d) => ({ offerId: d.offerId, isDefault: d.isDefault, variantId: d.variantId ?? null })),
    perCall,
    chunkMeans,
    stats: client.stats(),
  };
}
