// Page-side harness of the peer benchmark, the same for every SDK. It takes
// "script start", runs the adapter's `window.__setup(env)` (which loads the
// SDK's files and initialises it), and exposes the workloads run.mjs drives.
// Every event is a `Product Viewed` with the same eight properties as
// bench/browser, plus `bench_seq` ("bq<run>n<seq>z") so the sink can count
// distinct events delivered whatever the wire format.
(async () => {
  const scriptStart = performance.now();
  const params = new URLSearchParams(location.search);
  const RUN = params.get('run') || 'x';
  // A reload keeps window.name: it says where the sequence continues.
  const m = /^bench-start=(\d+)$/.exec(window.name || '');
  let seq = m ? Number(m[1]) : 0;
  window.name = '';
  const EVENT = 'Product Viewed';
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
  // Properties objects are built before any timing, a fresh object per event
  // (an SDK may keep a reference to what it was given).
  const props = (k) => ({ ...PRODUCTS[k & 15], bench_seq: `bq${RUN}n${k}z` });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const env = {
    origin: location.origin,
    writeKey: 'benchwritekey0000000000000000000',
    load: (src) =>
      new Promise((resolve, reject) => {
        const s = document.createElement('script');
        s.src = src;
        s.onload = () => resolve();
        s.onerror = () => reject(new Error(`could not load ${src}`));
        document.head.appendChild(s);
      }),
    import: (src) => import(src),
  };
  try {
    const sdk = await window.__setup(env);
    const ready = performance.now();
    /**
     * `n` tracks, `chunk` per task (a setTimeout turn between chunks, so the
     * SDK's own timers and deferred work run as they would on a page). With
     * `timed`, each call is timed on its own (µs). With `noop`, the same loop
     * calls a function that does nothing: the harness's own cost.
     */
    async function track({ n, chunk = 100, timed = false, noop = false, budgetMs = Infinity }) {
      const perCall = timed ? [] : null;
      const tEnd = performance.now() + budgetMs;
      const f = noop ? () => undefined : (e, p) => sdk.track(e, p);
      for (let i = 0; i < n; ) {
        const batch = [];
        for (let j = 0; j < chunk && i + j < n; j++) batch.push(props(seq + j));
        for (let j = 0; j < batch.length; j++, i++) {
          if (timed) {
            const t0 = performance.now();
            f(EVENT, batch[j]);
            perCall.push((performance.now() - t0) * 1000);
          } else {
            f(EVENT, batch[j]);
          }
        }
        if (!noop) seq += batch.length;
        if (i < n) await sleep(0);
        if (performance.now() > tEnd) break;
      }
      return perCall;
    }
    /** `n` tracks in one task (the wire and lifecycle workloads). */
    function burst(n) {
      const all = Array.from({ length: n }, (_, j) => props(seq + j));
      for (let j = 0; j < n; j++) sdk.track(EVENT, all[j]);
      seq += n;
    }
    window.bench = {
      ready: true,
      isolated: self.crossOriginIsolated === true,
      startupMs: ready - scriptStart,
      run: RUN,
      seq: () => seq,
      track,
      burst,
      flush: async () => {
        await sdk.flush?.();
      },
      beforeReload: () => {
        window.name = `bench-start=${seq}`;
      },
      decide: sdk.decide,
      sdk,
    };
  } catch (e) {
    window.benchError = String(e && e.stack ? e.stack : e);
  }
})();
