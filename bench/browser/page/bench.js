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
