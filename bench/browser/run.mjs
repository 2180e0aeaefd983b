#!/usr/bin/env node
// Browser benchmark of the npm package: cost of `track` on the main thread
// (synchronous, and including the deferred work), time to ready, bytes on
// the wire per 1,000 events, and download size. See README.md.
//
//   npm/scripts/build.sh && cargo build -p threadline-collector   # once
//   node bench/browser/run.mjs [--build] [--no-profile] [--no-names]
//   node bench/browser/run.mjs --only startup,track   # print only, no files
//
// Writes results.json and results.md next to this file; exits non-zero if
// any measurement fails or a check (all events delivered, nothing dropped,
// page cross-origin isolated, ...) does not hold.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ROOT, startCollector, waitFor } from '../../tests/lib/collector.mjs';
import { CHROMIUM, launch } from '../../tests/lib/browser.mjs';
import { compressedSizes, machine } from '../lib/measure.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const PAGE_DIR = join(HERE, 'page');
const DIST = join(ROOT, 'npm', 'dist');
const FILES = ['index.js', 'sdk_wasm.js', 'sdk_wasm_bg.wasm'];
const argv = process.argv.slice(2);
const args = new Set(argv);
// `--only startup,profile`: run some phases, print, write no results files.
const onlyArg = argv.find((a) => a.startsWith('--only='))?.slice(7) ?? (args.has('--only') ? argv[argv.indexOf('--only') + 1] : null);
const only = onlyArg ? new Set(onlyArg.split(',')) : null;
const PHASES = ['startup', 'track', 'mainThread', 'wire', 'decide', 'profile'];
for (const p of only ?? []) {
  if (!PHASES.includes(p)) {
    console.error(`bench: unknown phase ${p} (phases: ${PHASES.join(', ')})`);
    process.exit(1);
  }
}
const wanted = (phase) => (only ? only.has(phase) : phase !== 'profile' || !args.has('--no-profile'));

const TRACK_WARM = 1000;
const TRACK_N = 10000;
const WORKLOAD_N = 10000;
const WIRE_N = 1000;
const DECIDE_OFFERS = [10, 100, 1000];
// The variant of `home-test` that sdk-core/benches/core.rs's fixed device id
// gets (murmur3_x86_32/v1 bucket 7093 of 10,000).
const DECIDE_VARIANT = 'b';
const STARTUP_LOADS = 10;
// The page's URL carries UTM parameters, as a landing page from a campaign.
const PAGE_QUERY = 'utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale';

const started = Date.now();
const deadline = setTimeout(() => {
  console.error('bench: gave up after 3 minutes');
  process.exit(2);
}, 180_000);
deadline.unref();

const log = (...a) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// ---------- statistics ----------

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return {
    n: s.length,
    min: s[0],
    median: quantile(s, 0.5),
    p95: quantile(s, 0.95),
    p99: quantile(s, 0.99),
    max: s[s.length - 1],
    mean,
  };
}

/** Multiplies every number of a summary (ms → µs). */
const scale = (o, f) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, k === 'n' ? v : v * f]));
const round = (v, d = 1) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : v);
const roundAll = (o, d) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v, d)]));

// ---------- machine ----------


// ---------- size ----------

function sizes() {
  const files = {};
  const total = { raw: 0, gzip9: 0, brotli11: 0 };
  for (const f of FILES) {
    const buf = readFileSync(join(DIST, f));
    const row = compressedSizes(buf, f);
    files[f] = row;
    for (const k of Object.keys(total)) total[k] += row[k];
  }
  return { files, total };
}

// ---------- browser helpers ----------

const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

/** Serves the page's document with COOP/COEP so `performance.now()` has 5 µs resolution. */
async function isolate(page, origin) {
  await page.route(
    (url) => url.origin === origin && (url.pathname === '/' || url.pathname === '/index.html'),
    async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, headers: { ...response.headers(), ...ISOLATION_HEADERS } });
    },
  );
}

async function openPage(browser, col, query, { isolated = true, before } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  if (isolated) await isolate(page, col.url);
  if (before) await before(page);
  await page.goto(`${col.url}/?${PAGE_QUERY}${query ? `&${query}` : ''}`);
  await page.waitForFunction(() => window.bench?.ready || window.benchError, null, { timeout: 20000 });
  const err = await page.evaluate(() => window.benchError);
  if (err) throw new Error(`page failed to start: ${err}`);
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  if (isolated) {
    check(await page.evaluate(() => window.bench.crossOriginIsolated), 'page is cross-origin isolated');
  }
  return { context, page, errors };
}

async function waitAccepted(col, target, what) {
  await waitFor(async () => (await col.stats()).accepted >= target, 30000, `${what}: collector has ${target} events`);
  const s = await col.stats();
  check(s.accepted === target, `${what}: collector accepted exactly ${target} (got ${s.accepted})`);
  return s;
}

async function cdpMetrics(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
}

function checkDelivered(r, what) {
  const s = r.stats;
  check(s.droppedQueueFull === 0, `${what}: no event dropped for a full queue (${s.droppedQueueFull})`);
  check(s.droppedRejected === 0 && s.droppedMaxAttempts === 0, `${what}: no event dropped by the collector`);
  check(s.rejected === 0 && s.contained === 0, `${what}: no call rejected or contained`);
  check(s.queued === 0, `${what}: nothing left queued`);
  if (r.storedQueues) check(r.storedQueues.length === 0, `${what}: no stored queue left (${r.storedQueues})`);
}

// ---------- phases ----------

/** Time from the page script's start to `await createClient()`, fresh contexts. */
async function startup(browser, col) {
  const cold = [];
  const warm = [];
  for (let i = 0; i < STARTUP_LOADS; i++) {
    // Not isolated: routing a request in Playwright turns the HTTP cache off,
    // and the warm figures need it. Millisecond figures do not need 5 µs.
    const { context, page } = await openPage(browser, col, `prefix=startup${i}`, { isolated: false });
    cold.push(await page.evaluate(() => window.bench.startup));
    await page.reload();
    await page.waitForFunction(() => window.bench?.ready || window.benchError);
    warm.push(await page.evaluate(() => window.bench.startup));
    await context.close();
  }
  const fig = (runs) => ({
    scriptToReadyMs: roundAll(summary(runs.map((r) => r.ready - r.scriptStart)), 2),
    scriptToImportedMs: roundAll(summary(runs.map((r) => r.imported - r.scriptStart)), 2),
    importedToReadyMs: roundAll(summary(runs.map((r) => r.ready - r.imported)), 2),
    navigationToReadyMs: roundAll(summary(runs.map((r) => r.ready)), 2),
  });
  return { loads: STARTUP_LOADS, cold: fig(cold), warm: fig(warm) };
}

/** µs per synchronous `track` call. */
async function trackTiming(browser, col) {
  const before = (await col.stats()).accepted;
  const { context, page } = await openPage(browser, col, 'prefix=timing');
  const r = await page.evaluate((o) => window.bench.timeTracks(o), { warm: TRACK_WARM, n: TRACK_N });
  checkDelivered(r, 'track timing');
  await waitAccepted(col, before + r.calls, 'track timing');
  await context.close();
  const perCall = r.perCall;
  // The clock's step: the smallest non-zero difference between two readings.
  const steps = perCall.filter((v) => v > 0);
  const resolutionUs = steps.length ? Math.min(...steps) * 1000 : null;
  const zeroShare = perCall.filter((v) => v === 0).length / perCall.length;
  return {
    crossOriginIsolated: true,
    calls: TRACK_N,
    warmUp: TRACK_WARM,
    chunk: 100,
    clockResolutionUs: round(resolutionUs, 2),
    zeroReadings: round(zeroShare, 3),
    perCallUs: roundAll(scale(summary(perCall), 1000), 2),
    chunkMeanUs: roundAll(scale(summary(r.chunkMeans), 1000), 2),
    maxQueued: r.maxQueued,
  };
}

/** Main-thread task time for the whole workload (CDP Performance metrics). */
async function mainThread(browser, col) {
  const { context, page } = await openPage(browser, col, 'prefix=mainthread');
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });

  const measure = async (noop) => {
    const accepted0 = (await col.stats()).accepted;
    const m0 = await cdpMetrics(cdp);
    const r = await page.evaluate((o) => window.bench.workload(o), { n: WORKLOAD_N, noop });
    if (!noop) {
      checkDelivered(r, 'main-thread workload');
      await waitAccepted(col, accepted0 + WORKLOAD_N, 'main-thread workload');
    }
    const m1 = await cdpMetrics(cdp);
    const d = (k) => ((m1[k] ?? NaN) - (m0[k] ?? NaN)) * 1e6; // s → µs
    return {
      taskUs: d('TaskDuration'),
      threadUs: d('ThreadTime'),
      maxQueued: r.maxQueued,
      uploads: r.stats.uploads,
      gzipUploads: r.stats.gzipUploads,
    };
  };
  const baseline = await measure(true);
  const sdk = await measure(false);
  await context.close();
  const per = (v) => round(v / WORKLOAD_N, 2);
  return {
    events: WORKLOAD_N,
    chunk: 100,
    taskUsPerEvent: per(sdk.taskUs),
    taskUsPerEventNetOfHarness: per(sdk.taskUs - baseline.taskUs),
    threadTimeUsPerEvent: per(sdk.threadUs),
    harnessTaskUsPerEvent: per(baseline.taskUs),
    uploads: sdk.uploads,
    gzipUploads: sdk.gzipUploads,
    maxQueued: sdk.maxQueued,
  };
}

/** Requests and body bytes per 1,000 events, default settings and uncompressed. */
async function wire(browser, col) {
  const one = async (query, what) => {
    const s0 = await col.stats();
    const { context, page } = await openPage(browser, col, query);
    const r = await page.evaluate((o) => window.bench.burst(o), { n: WIRE_N });
    checkDelivered(r, what);
    const s1 = await waitAccepted(col, s0.accepted + WIRE_N, what);
    await context.close();
    return {
      requests: s1.requests - s0.requests,
      bytes: s1.bytes - s0.bytes,
      gzipRequests: s1.gzipRequests - s0.gzipRequests,
    };
  };
  const gz = await one('prefix=wire', 'wire (default)');
  const plain = await one('prefix=wireplain&compress=0', 'wire (uncompressed)');
  check(gz.gzipRequests === gz.requests, 'default settings gzip every batch');
  return {
    events: WIRE_N,
    requests: gz.requests,
    bodyBytes: gz.bytes,
    bytesPerEvent: round(gz.bytes / WIRE_N, 1),
    uncompressedRequests: plain.requests,
    uncompressedBodyBytes: plain.bytes,
    compressionRatio: round(plain.bytes / gz.bytes, 2),
  };
}

/**
 * µs per synchronous `client.decide` for artifacts of 10, 100 and 1,000
 * offers (sdk-core/benches/core.rs `decide_artifact`, built in the page),
 * for a returning shopper (a few hundred events of history) and for a new
 * visitor (empty history: every condition evaluated). One fresh page per
 * figure, cross-origin isolated for the 5 µs clock.
 */
async function decide(browser, col) {
  const out = {};
  for (const n of DECIDE_OFFERS) {
    for (const returning of [true, false]) {
      const key = `${returning ? 'offers' : 'newVisitor'}_${n}`;
      // The native benchmark's device id is in variant `b` of the artifact's
      // A/B test (content replaced); a page's device id is random, so new
      // pages are opened until one is in `b` too (never in the holdout,
      // which would skip the ranking).
      let r;
      for (let attempt = 0; attempt < 16 && !(r && !r.retry); attempt++) {
        const { context, page } = await openPage(browser, col, `prefix=decide${n}${returning ? 'r' : 'n'}${attempt}`);
        r = await page.evaluate((o) => window.bench.decideTiming(o), { n, returning, variant: DECIDE_VARIANT });
        await context.close();
      }
      check(!r.retry, `decide ${key}: a device in variant ${DECIDE_VARIANT} within 16 tries`);
      check(r.stats.contained === 0 && r.stats.rejected === 0, `decide ${key}: no call rejected or contained`);
      if (returning) check(r.sample.some((d) => !d.isDefault), `decide ${key}: the shopper gets offers (${JSON.stringify(r.sample)})`);
      else check(r.sample.length === 1 && r.sample[0].isDefault, `decide ${key}: a new visitor gets the default`);
      out[key] = {
        offers: n,
        artifactBytes: r.artifactBytes,
        historyEvents: r.events,
        calls: r.perCall.length,
        perCallUs: roundAll(scale(summary(r.perCall), 1000), 1),
        chunkMeanUs: roundAll(scale(summary(r.chunkMeans), 1000), 2),
        variant: DECIDE_VARIANT,
        sample: r.sample,
      };
      log(`decide ${key}: median ${out[key].perCallUs.median} µs, p95 ${out[key].perCallUs.p95} µs (chunk mean median ${out[key].chunkMeanUs.median} µs)`);
    }
  }
  return out;
}

/**
 * The shipped wasm carries no function names (wasm-opt drops them), so a
 * profile would say `wasm-function[113]`. This rebuilds it from the same
 * cargo artifact with names kept (`wasm-bindgen`, then `wasm-opt -Oz -g`):
 * the same code, named. Used only if the JS glue it produces is identical to
 * npm/dist's (i.e. the artifact is the one the package was built from).
 */
function namedWasm() {
  const target = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
  const artifact = join(target, 'wasm32-unknown-unknown', 'wasm-release', 'sdk_wasm.wasm');
  if (!existsSync(artifact)) return null;
  const dir = mkdtempSync(join(tmpdir(), 'threadline-bench-'));
  try {
    execFileSync('wasm-bindgen', ['--target', 'web', '--out-dir', dir, artifact], { stdio: 'ignore' });
    const glue = readFileSync(join(dir, 'sdk_wasm.js'));
    if (!glue.equals(readFileSync(join(DIST, 'sdk_wasm.js')))) {
      log('profile: cargo artifact does not match npm/dist; wasm functions stay unnamed');
      return null;
    }
    const wasm = join(dir, 'sdk_wasm_bg.wasm');
    execFileSync(join(ROOT, 'npm', 'node_modules', '.bin', 'wasm-opt'), ['-Oz', '-g', wasm, '-o', wasm], {
      stdio: 'ignore',
    });
    return { wasm: readFileSync(wasm) };
  } catch (e) {
    log(`profile: no named wasm (${String(e).split('\n')[0]})`);
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Where `track` spends its time: a CPU profile (CDP Profiler, 50 µs
 * sampling) of 5 × 2,000 calls in one task each, attributed by function.
 */
async function profile(_browser, col) {
  const named = args.has('--no-names') ? null : namedWasm();
  // TurboFan inlines small wasm functions into the JS that calls them, which
  // would put wasm time under `track sdk_wasm.js` in some runs and not others;
  // a browser of its own without that inlining keeps the attribution stable.
  const browser = await launch({ args: ['--js-flags=--no-turbo-inline-js-wasm-calls'] });
  try {
    return await profileIn(browser, col, named);
  } finally {
    await browser.close();
  }
}

async function profileIn(browser, col, named) {
  const { context, page } = await openPage(browser, col, 'prefix=profile', {
    before: async (pg) => {
      if (!named) return;
      await pg.route(`${col.url}/npm/dist/sdk_wasm_bg.wasm`, (route) =>
        route.fulfill({ body: named.wasm, headers: { 'content-type': 'application/wasm' } }),
      );
    },
  });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
  await cdp.send('Profiler.start');
  for (let i = 0; i < 5; i++) {
    const r = await page.evaluate((o) => window.bench.burst(o), { n: 2000 });
    checkDelivered(r, 'profile');
  }
  const { profile: p } = await cdp.send('Profiler.stop');
  await context.close();
  // For Chrome DevTools (Performance → Load profile); not committed.
  writeFileSync(join(HERE, 'track.cpuprofile'), JSON.stringify(p));

  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map(p.nodes.map((n) => [n.id, 0]));
  for (let i = 0; i < p.samples.length; i++) {
    self.set(p.samples[i], self.get(p.samples[i]) + (p.timeDeltas[i + 1] ?? 0));
  }
  const GLUE_HELPERS = new Set(['handleError', '']);
  const label = (n) => {
    const f = n.callFrame;
    const file = f.url ? f.url.replace(/^.*\//, '') : '';
    if (f.functionName) return `${f.functionName}${file ? ` ${file}` : ''}`;
    if (!file) return '(native, no JS caller)';
    // wasm-bindgen's import shims are anonymous: name them by their caller.
    let up = parent.get(n.id);
    while (up !== undefined && GLUE_HELPERS.has(byId.get(up).callFrame.functionName)) up = parent.get(up);
    const caller = up === undefined ? '?' : byId.get(up).callFrame.functionName;
    return `(anonymous in ${caller}) ${file}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
  };
  // Samples under WebClient.track (index.js) are the synchronous call.
  const isTrack = (n) => n.callFrame.functionName === 'track' && n.callFrame.url.endsWith('/index.js');
  const inTrack = (id) => {
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) if (isTrack(byId.get(cur))) return true;
    return false;
  };
  // Coarse attribution of the synchronous call: our wrapper (index.js),
  // wasm-bindgen's glue (sdk_wasm.js), the core and driver (wasm), and
  // browser natives called from them (TextDecoder, JSON, location, ...).
  const kind = (n) => {
    const url = n.callFrame.url;
    if (url.endsWith('/index.js')) return 'wrapper (index.js)';
    if (url.endsWith('/sdk_wasm.js')) return 'glue (sdk_wasm.js)';
    if (url.endsWith('.wasm')) return 'wasm';
    return 'browser natives';
  };
  const byKind = new Map();
  const inside = new Map();
  const outside = new Map();
  let insideTotal = 0;
  let total = 0;
  for (const n of p.nodes) {
    const t = self.get(n.id);
    if (!t) continue;
    const name = label(n);
    if (['(idle)', '(program)'].includes(name)) continue;
    total += t;
    if (inTrack(n.id)) {
      insideTotal += t;
      byKind.set(kind(n), (byKind.get(kind(n)) ?? 0) + t);
      inside.set(name, (inside.get(name) ?? 0) + t);
    } else {
      outside.set(name, (outside.get(name) ?? 0) + t);
    }
  }
  const top = (m, k) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([fn, us]) => ({ fn, ms: round(us / 1000, 1) }));
  return {
    calls: 10000,
    samplingUs: 50,
    wasmNames: Boolean(named),
    busyMs: round(total / 1000, 1),
    insideTrackMs: round(insideTotal / 1000, 1),
    insideTrackShares: Object.fromEntries(
      [...byKind.entries()].sort((a, b) => b[1] - a[1]).map(([k, us]) => [k, round(us / insideTotal, 3)]),
    ),
    insideTrack: top(inside, 12),
    outsideTrack: top(outside, 12),
  };
}

// ---------- report ----------

function markdown(r) {
  const t = r.track;
  const m = r.mainThread;
  const s = r.startup;
  const w = r.wire;
  const z = r.size;
  const kb = (b) => `${(b / 1024).toFixed(1)} KiB`;
  const lines = [
    `Browser benchmark, ${r.date.slice(0, 10)}: Chromium ${r.machine.chromium}, ${r.machine.cpu} (${r.machine.nproc} cores), load average ${r.machine.loadAverage.start.map((v) => v.toFixed(2)).join(' ')} at start, build ${r.machine.commit ?? 'unknown'}. Produced by \`node bench/browser/run.mjs\`; see \`bench/browser/README.md\`.`,
    ...(r.machine.loadAverage.start[0] > r.machine.nproc / 2
      ? ['', `The machine was busy during this run (1-minute load average ${r.machine.loadAverage.start[0]} at start, ${r.machine.loadAverage.end[0]} at end, on ${r.machine.nproc} cores): timings are pessimistic.`]
      : []),
    '',
    '| figure | value |',
    '|---|---|',
    `| \`track\`, synchronous, per call (${t.calls.toLocaleString('en')} calls after ${t.warmUp.toLocaleString('en')} warm-up) | median **${t.perCallUs.median} µs**, p95 ${t.perCallUs.p95} µs, p99 ${t.perCallUs.p99} µs (clock step ${t.clockResolutionUs} µs) |`,
    `| \`track\`, synchronous, mean over chunks of ${t.chunk} calls | median ${t.chunkMeanUs.median} µs, p95 ${t.chunkMeanUs.p95} µs |`,
    `| main-thread time per event, deferred work included (${m.events.toLocaleString('en')} events delivered and persisted) | **${m.taskUsPerEvent} µs** (${m.taskUsPerEventNetOfHarness} µs net of the benchmark loop's own ${m.harnessTaskUsPerEvent} µs) |`,
    `| script start → \`createClient\` resolved, median of ${s.loads} fresh contexts (cold HTTP cache) | **${s.cold.scriptToReadyMs.median} ms** (p95 ${s.cold.scriptToReadyMs.p95} ms; navigation start → ready ${s.cold.navigationToReadyMs.median} ms) |`,
    `| the same, reload (warm HTTP cache) | ${s.warm.scriptToReadyMs.median} ms (navigation start → ready ${s.warm.navigationToReadyMs.median} ms) |`,
    `| on the wire per 1,000 \`Product Viewed\` events, defaults, \`flush()\` | **${w.requests} requests, ${kb(w.bodyBytes)}** of gzip body (${w.bytesPerEvent} B/event) |`,
    `| the same uncompressed (\`compress: false\`) | ${w.uncompressedRequests} requests, ${kb(w.uncompressedBodyBytes)} (gzip saves ${w.compressionRatio}×) |`,
    ...(r.decide
      ? DECIDE_OFFERS.map((n) => {
          const a = r.decide[`offers_${n}`];
          const b = r.decide[`newVisitor_${n}`];
          return `| \`decide('home', {max: 3})\`, ${n.toLocaleString('en')} offers: returning shopper (${a.historyEvents} events of history) / new visitor | median **${a.perCallUs.median} µs**, p95 ${a.perCallUs.p95} µs (chunk mean ${a.chunkMeanUs.median} µs) / median ${b.perCallUs.median} µs, p95 ${b.perCallUs.p95} µs |`;
        })
      : []),
    `| size: JS + wasm, brotli 11 | **${kb(z.total.brotli11)}** (gzip -9 ${kb(z.total.gzip9)}, raw ${kb(z.total.raw)}) |`,
    '',
    '| file | raw | gzip -9 | brotli 11 |',
    '|---|---:|---:|---:|',
    ...Object.entries(z.files).map(([f, v]) => `| \`${f}\` | ${v.raw.toLocaleString('en')} | ${v.gzip9.toLocaleString('en')} | ${v.brotli11.toLocaleString('en')} |`),
    `| total | ${z.total.raw.toLocaleString('en')} | ${z.total.gzip9.toLocaleString('en')} | ${z.total.brotli11.toLocaleString('en')} |`,
    '',
  ];
  return lines.join('\n');
}

// ---------- main ----------

async function main() {
  if (args.has('--build')) {
    log('building npm/dist');
    execFileSync('bash', [join(ROOT, 'npm', 'scripts', 'build.sh')], { stdio: 'inherit' });
  }
  for (const f of FILES) {
    check(existsSync(join(DIST, f)), `npm/dist/${f} exists (run npm/scripts/build.sh, or pass --build)`);
  }
  const target = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
  check(
    process.env.THREADLINE_COLLECTOR || existsSync(join(target, 'debug', 'threadline-collector')),
    'the collector is built (cargo build -p threadline-collector)',
  );
  const loadStart = loadavg();
  const result = { date: new Date().toISOString(), machine: machine() };
  result.size = sizes();
  log('size', result.size.total);

  const col = await startCollector(['--static-dir', PAGE_DIR]);
  let browser;
  try {
    browser = await launch();
    result.machine.chromium = browser.version();
    result.machine.chromiumBinary = CHROMIUM;

    const phases = { startup, track: trackTiming, mainThread, wire, decide, profile };
    for (const [name, run] of Object.entries(phases)) {
      if (!wanted(name)) continue;
      log(name);
      result[name] = await run(browser, col);
    }
  } finally {
    await browser?.close();
    await col.stop();
  }
  result.machine.loadAverage = { start: loadStart.map((v) => round(v, 2)), end: loadavg().map((v) => round(v, 2)) };
  result.durationS = round((Date.now() - started) / 1000, 1);

  if (only) {
    const { profile: p, ...rest } = result;
    console.log(JSON.stringify(rest, null, 2));
  } else {
    writeFileSync(join(HERE, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
    const md = markdown(result);
    writeFileSync(join(HERE, 'results.md'), md);
    console.log(md);
  }
  if (result.profile) {
    const p = result.profile;
    console.log(`profile: ${p.insideTrackMs} ms inside track() for ${p.calls} calls, ${p.busyMs} ms busy in all`);
    console.log(`  shares inside track: ${Object.entries(p.insideTrackShares).map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`).join(', ')}`);
    for (const { fn, ms } of p.insideTrack) console.log(`  in track  ${String(ms).padStart(7)} ms  ${fn}`);
    for (const { fn, ms } of p.outsideTrack) console.log(`  deferred  ${String(ms).padStart(7)} ms  ${fn}`);
  }
  log(`done in ${result.durationS} s`);
}

main().catch((e) => {
  console.error(`bench: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
