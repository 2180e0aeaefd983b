#!/usr/bin/env node
// Side-by-side browser benchmark: Threadline against peer analytics SDKs,
// same machine, same run, same page, same workload. See README.md.
//
//   scripts/setup.sh && npm/scripts/build.sh && cargo build -p threadline-collector   # once
//   node bench/peers/run.mjs             # installs the pinned peers (npm ci) when missing [--rounds 3] [--events 10000] [--only segment,threadline] [--phases decide]
//
// Each SDK gets its own local sink server (127.0.0.1) and a fresh browser
// context per measurement; SDKs are interleaved round by round (the order
// rotates each round) so machine noise favours no one. Writes results.json
// and results.md next to this file (not with --only: a partial run prints).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { ROOT } from '../../tests/lib/collector.mjs';
import { CHROMIUM, launch } from '../../tests/lib/browser.mjs';
import { startSink } from './lib/sink.mjs';
import { compressedSizes, machine as sharedMachine } from '../lib/measure.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
// The peers are pinned in package-lock.json; install them on first use (the
// test command never runs this benchmark, so setup.sh does not fetch them).
const STAMP = join(HERE, 'node_modules', '.threadline-lock');
if (!existsSync(STAMP) || readFileSync(STAMP, 'utf8') !== readFileSync(join(HERE, 'package-lock.json'), 'utf8')) {
  console.error('bench/peers: npm ci (the pinned peer SDKs)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: HERE, stdio: 'inherit' });
  writeFileSync(STAMP, readFileSync(join(HERE, 'package-lock.json'), 'utf8'));
}
const HARNESS = readFileSync(join(HERE, 'lib', 'harness.js'), 'utf8');

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return dflt;
  return argv[i].includes('=') ? argv[i].split('=').slice(1).join('=') : argv[i + 1];
};
const ROUNDS = Number(opt('rounds', 3));
const TRACK_N = Number(opt('events', 10000));
const WARM_N = 1000;
const LIFE_N = Math.min(1000, TRACK_N); // the wire, close and reload workloads
const CLOSE_WAIT_MS = Number(opt('close-wait', 5000));
const DECIDE_FEATURES = Number(opt('features', 200));
const only = opt('only', null)?.split(',');
// Some phases only (track, wire, close, reload, decide); like --only, a partial run prints.
const onlyPhases = opt('phases', null)?.split(',');

const TRACK_BUDGET_MS = Number(opt('budget', 30000));
const USER_AGENT = (browser) =>
  `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser.version()} Safari/537.36`;
const started = Date.now();
const log = (...a) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------- statistics ----------

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
const round = (v, d = 1) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : null);
function summary(values, d = 2) {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  return {
    n: s.length,
    min: round(s[0], d),
    median: round(quantile(s, 0.5), d),
    p95: round(quantile(s, 0.95), d),
    p99: round(quantile(s, 0.99), d),
    max: round(s[s.length - 1], d),
  };
}
/** Median and min–max over rounds. */
function spread(values, d = 2) {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!s.length) return null;
  return { median: round(quantile(s, 0.5), d), min: round(s[0], d), max: round(s[s.length - 1], d), n: s.length };
}

// ---------- machine ----------

function machine(browserVersion) {
  return { ...sharedMachine(), chromium: browserVersion, chromiumBinary: CHROMIUM };
}

// ---------- sizes ----------

function sizeOf(files) {
  const total = { raw: 0, gzip9: 0, brotli11: 0 };
  const rows = {};
  for (const f of [...files].sort()) {
    const buf = readFileSync(f);
    const row = compressedSizes(buf, f);
    rows[relative(ROOT, f)] = row;
    for (const k of Object.keys(total)) total[k] += row[k];
  }
  return { files: rows, total };
}

// ---------- browser helpers ----------

async function openPage(browser, sink, info, { context = null, recordStartup = true } = {}) {
  // The same desktop Chrome user agent for every SDK: headless Chromium's
  // "HeadlessChrome" makes some SDKs (PostHog) drop every event as a bot's.
  context ??= await browser.newContext({ userAgent: USER_AGENT(browser) });
  const page = await context.newPage();
  page.on('pageerror', (e) => info.pageErrors.push(String(e).slice(0, 300)));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(sink.url) && !u.startsWith('data:') && !u.startsWith('blob:')) info.external.add(u.slice(0, 120));
  });
  const run = Math.random().toString(36).slice(2, 8);
  await page.goto(`${sink.url}/?run=${run}`);
  await page.waitForFunction(() => window.bench?.ready || window.benchError, null, { timeout: 40000 });
  const err = await page.evaluate(() => window.benchError);
  if (err) throw new Error(`page failed to start: ${err}`);
  const { startupMs, isolated } = await page.evaluate(() => ({ startupMs: window.bench.startupMs, isolated: window.bench.isolated }));
  if (recordStartup) info.startupMs.push(startupMs);
  if (!isolated) throw new Error('page is not cross-origin isolated');
  return { context, page };
}

/** Until `target` distinct events arrived, or no request for `quietMs`, or `maxMs`. */
async function waitDelivered(sink, target, { maxMs = 20000, quietMs = 6000 } = {}) {
  const t0 = Date.now();
  for (;;) {
    const s = sink.snapshot();
    const now = Date.now();
    if (s.delivered >= target) return s;
    if (now - t0 > maxMs) return s;
    if (now - t0 > quietMs && now - Math.max(sink.stats.lastRequestAt, t0) > quietMs) return s;
    await sleep(100);
  }
}

/** Until no request arrived for `quietMs` (at most `maxMs`): lets init traffic settle. */
async function settle(sink, quietMs = 2500, maxMs = 8000) {
  const t0 = Date.now();
  while (Date.now() - t0 < maxMs && Date.now() - Math.max(sink.stats.lastRequestAt, t0) < quietMs) await sleep(100);
}

async function heapUsed(cdp) {
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  return usedSize;
}

async function taskSeconds(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  return metrics.find((m) => m.name === 'TaskDuration')?.value ?? NaN;
}

// ---------- phases (one fresh sink and context each) ----------

async function withPage(browser, adapter, info, fn) {
  const sink = await startSink({ adapter, harness: HARNESS });
  let context;
  try {
    const opened = await openPage(browser, sink, info);
    context = opened.context;
    return await fn(opened.page, sink, context);
  } finally {
    for (const f of sink.stats.served.keys()) info.served.add(f);
    await context?.close().catch(() => {});
    await sink.close();
  }
}

/** µs per track call, main-thread time per event, heap growth. */
function trackPhase(browser, adapter, info) {
  return withPage(browser, adapter, info, async (page, sink) => {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
    let t0 = await taskSeconds(cdp);
    await page.evaluate((n) => window.bench.track({ n, noop: true }), TRACK_N);
    const harnessUs = ((await taskSeconds(cdp)) - t0) * 1e6;
    const heap0 = await heapUsed(cdp);
    await page.evaluate((n) => window.bench.track({ n }), WARM_N);
    t0 = await taskSeconds(cdp);
    // A time budget: an SDK whose calls cost milliseconds would otherwise
    // take many minutes; its figures are then over the calls made.
    const perCall = await page.evaluate(([n, budgetMs]) => window.bench.track({ n, timed: true, budgetMs }), [TRACK_N, TRACK_BUDGET_MS]);
    const calls = perCall.length;
    await page.evaluate(() => window.bench.flush());
    const s = await waitDelivered(sink, WARM_N + calls, { maxMs: 20000, quietMs: 6000 });
    const taskUs = ((await taskSeconds(cdp)) - t0) * 1e6;
    const heap1 = await heapUsed(cdp);
    return {
      calls,
      perCallUs: summary(perCall),
      taskUsPerEvent: round((taskUs - (harnessUs * calls) / TRACK_N) / calls, 2),
      harnessUsPerEvent: round(harnessUs / TRACK_N, 2),
      heapGrowthKiB: round((heap1 - heap0) / 1024, 1),
      heapEvents: WARM_N + calls,
      delivered: s.delivered,
      of: WARM_N + calls,
    };
  });
}

/** Requests and bytes on the wire for LIFE_N events in one task, then flush(). */
function wirePhase(browser, adapter, info) {
  return withPage(browser, adapter, info, async (page, sink) => {
    await settle(sink);
    const s0 = sink.snapshot();
    await page.evaluate((n) => window.bench.burst(n), LIFE_N);
    await page.evaluate(() => window.bench.flush());
    const s1 = await waitDelivered(sink, s0.delivered + LIFE_N, { maxMs: 25000, quietMs: 6000 });
    const per = 1000 / LIFE_N;
    return {
      requests: round((s1.requests - s0.requests) * per, 1),
      bodyBytes: round((s1.bodyBytes - s0.bodyBytes) * per, 0),
      headerBytes: round((s1.headerBytes - s0.headerBytes) * per, 0),
      bytes: round((s1.bodyBytes - s0.bodyBytes + s1.headerBytes - s0.headerBytes) * per, 0),
      delivered: s1.delivered - s0.delivered,
      of: LIFE_N,
    };
  });
}

/** LIFE_N events (chunks of 100, a task each), the page closed right after the last. */
async function closePhase(browser, adapter, info) {
  const sink = await startSink({ adapter, harness: HARNESS });
  try {
    const { context, page } = await openPage(browser, sink, info);
    await settle(sink, 1000, 4000);
    const s0 = sink.snapshot();
    await page.evaluate((n) => window.bench.track({ n }), LIFE_N);
    await page.close();
    await sleep(CLOSE_WAIT_MS);
    const s1 = sink.snapshot();
    // The next visit to the site (same browser profile): what the SDK kept
    // and sends then.
    await openPage(browser, sink, info, { context, recordStartup: false });
    const s2 = await waitDelivered(sink, s0.delivered + LIFE_N, { maxMs: 15000, quietMs: 6000 });
    for (const f of sink.stats.served.keys()) info.served.add(f);
    await context.close().catch(() => {});
    return {
      delivered: s1.delivered - s0.delivered,
      afterNextVisit: s2.delivered - s0.delivered,
      of: LIFE_N,
      waitedMs: CLOSE_WAIT_MS,
    };
  } finally {
    await sink.close();
  }
}

/** Half the events, a reload, the other half, flush(), then wait. */
function reloadPhase(browser, adapter, info) {
  return withPage(browser, adapter, info, async (page, sink) => {
    const half = Math.floor(LIFE_N / 2);
    await page.evaluate((n) => window.bench.track({ n }), half);
    await page.evaluate(() => window.bench.beforeReload());
    await page.reload();
    await page.waitForFunction(() => window.bench?.ready || window.benchError, null, { timeout: 40000 });
    const err = await page.evaluate(() => window.benchError);
    if (err) throw new Error(`page failed to start after reload: ${err}`);
    const seq = await page.evaluate(() => window.bench.seq());
    if (seq !== half) throw new Error(`after reload the sequence is at ${seq}, not ${half}`);
    await page.evaluate((n) => window.bench.track({ n }), LIFE_N - half);
    await page.evaluate(() => window.bench.flush());
    const s = await waitDelivered(sink, LIFE_N, { maxMs: 20000, quietMs: 6000 });
    return { delivered: s.delivered, of: LIFE_N };
  });
}

function decidePhase(browser, adapter, info) {
  return withPage(browser, adapter, info, async (page) => {
    const r = await page.evaluate((features) => window.bench.decide({ features }), DECIDE_FEATURES);
    return {
      features: DECIDE_FEATURES,
      perDecisionUs: summary(r.perPass),
      perFeatureUs: round(quantile([...r.perPass].sort((a, b) => a - b), 0.5) / DECIDE_FEATURES, 3),
      nonDefault: r.nonDefault,
      sample: r.sample,
    };
  });
}

// ---------- one SDK, one round ----------

async function measure(browser, adapter, state) {
  const info = state;
  const out = {};
  const phases =
    adapter.kind === 'decide'
      ? { decide: decidePhase }
      : { track: trackPhase, wire: wirePhase, close: closePhase, reload: reloadPhase,
          ...(adapter.ours && !adapter.variant ? { decide: decidePhase } : {}) };
  for (const [name, fn] of Object.entries(phases)) {
    if (onlyPhases && !onlyPhases.includes(name)) continue;
    log(`${adapter.name}: ${name}`);
    try {
      out[name] = await fn(browser, adapter, info);
    } catch (e) {
      out[name] = { error: String(e.message ?? e).split('\n')[0].slice(0, 300) };
      log(`${adapter.name}: ${name} failed: ${out[name].error}`);
    }
  }
  return out;
}

// ---------- report ----------

const FIGURES = [
  { key: 'size', label: 'JS+wasm, brotli 11 (KiB)', get: (r) => r.size?.total.brotli11 / 1024, d: 1, better: 'low' },
  { key: 'gzip', label: 'gzip -9 (KiB)', get: (r) => r.size?.total.gzip9 / 1024, d: 1, better: 'low' },
  { key: 'raw', label: 'raw (KiB)', get: (r) => r.size?.total.raw / 1024, d: 1, better: 'low' },
  { key: 'startup', label: 'script start → ready (ms)', round: (x) => x.startupMs, d: 1, better: 'low' },
  { key: 'trackMedian', label: '`track` median (µs)', round: (x) => x.track?.perCallUs?.median, d: 2, better: 'low' },
  { key: 'trackP95', label: '`track` p95 (µs)', round: (x) => x.track?.perCallUs?.p95, d: 2, better: 'low' },
  { key: 'trackP99', label: '`track` p99 (µs)', round: (x) => x.track?.perCallUs?.p99, d: 2, better: 'low' },
  { key: 'task', label: 'main-thread µs/event incl. deferred work', round: (x) => x.track?.taskUsPerEvent, d: 1, better: 'low' },
  { key: 'calls', label: '`track` calls timed (of the budget)', round: (x) => x.track?.calls, d: 0, better: 'high' },
  { key: 'heap', label: `JS heap growth, ${(WARM_N + TRACK_N).toLocaleString('en')} events then GC (KiB)`, round: (x) => x.track?.heapGrowthKiB, d: 0, better: 'low' },
  { key: 'requests', label: 'requests per 1,000 events', round: (x) => x.wire?.requests, d: 0, better: 'low', complete: true },
  { key: 'wireBytes', label: 'bytes on the wire per 1,000 events (KiB, bodies + headers)', round: (x) => x.wire?.bytes / 1024, d: 1, better: 'low', complete: true },
  { key: 'bodyBytes', label: 'of which bodies (KiB)', round: (x) => x.wire?.bodyBytes / 1024, d: 1, better: 'low', complete: true },
  { key: 'deliveredFlush', label: `delivered of ${LIFE_N} after flush`, round: (x) => x.wire?.delivered, d: 0, better: 'high' },
  { key: 'deliveredClose', label: `delivered of ${LIFE_N}, page closed (${CLOSE_WAIT_MS / 1000} s)`, round: (x) => x.close?.delivered, d: 0, better: 'high' },
  { key: 'deliveredNextVisit', label: `the same, once the site is opened again`, round: (x) => x.close?.afterNextVisit, d: 0, better: 'high' },
  { key: 'deliveredReload', label: `delivered of ${LIFE_N}, reload mid-way`, round: (x) => x.reload?.delivered, d: 0, better: 'high' },
];

function figureValues(sdk) {
  const out = {};
  for (const f of FIGURES) {
    if (f.get) {
      const v = f.get(sdk);
      out[f.key] = Number.isFinite(v) ? { median: round(v, f.d), min: round(v, f.d), max: round(v, f.d), n: 1 } : null;
    } else {
      out[f.key] = spread(sdk.rounds.map((x) => f.round(x)), f.d);
    }
  }
  return out;
}

function fmt(s) {
  if (!s) return 'n/a';
  if (s.min === s.max) return `${s.median}`;
  return `${s.median} (${s.min}–${s.max})`;
}

function ratios(result) {
  // The ratios are the full build's (the product); a variant of ours (the
  // analytics-only build) is a column of its own.
  const ours = result.sdks.find((s) => s.ours && !s.variant);
  const peers = result.sdks.filter((s) => !s.ours && s.kind !== 'decide');
  const out = {};
  if (!ours) return out;
  for (const f of FIGURES) {
    const o = ours.figures[f.key]?.median;
    // Wire figures compare only peers that delivered every event: a peer
    // whose rate limiter dropped most of them sends fewer bytes for less.
    const vals = peers
      .filter((p) => !f.complete || p.figures.deliveredFlush?.median === LIFE_N)
      .map((p) => ({ name: p.name, v: p.figures[f.key]?.median }))
      .filter((x) => Number.isFinite(x.v));
    if (!Number.isFinite(o) || !vals.length) continue;
    vals.sort((a, b) => (f.better === 'low' ? a.v - b.v : b.v - a.v));
    const best = vals[0];
    out[f.key] = { ours: o, bestPeer: best.name, best: best.v, ratio: best.v === 0 ? null : round(o / best.v, 2) };
  }
  const seg = peers.find((p) => p.name === 'segment')?.figures.wireBytes?.median;
  if (Number.isFinite(seg) && Number.isFinite(ours.figures.wireBytes?.median)) {
    out.wireBytesVsSegment = { ours: ours.figures.wireBytes.median, segment: seg, ratio: round(ours.figures.wireBytes.median / seg, 3) };
  }
  return out;
}

function markdown(r) {
  const m = r.machine;
  const la = (a) => a.map((v) => v.toFixed(2)).join(' ');
  const analytics = r.sdks.filter((s) => s.kind !== 'decide');
  const lines = [
    `Peer benchmark, ${r.date.slice(0, 16).replace('T', ' ')} UTC: ${m.cpu}, ${m.nproc} cores, load average ${la(m.loadAverage.start)} at start and ${la(m.loadAverage.end)} at end (shared, busy machine), Chromium ${m.chromium} (headless), Node ${m.node}, our build ${m.commit ?? 'unknown'}. ${r.rounds} round(s), SDK order rotated each round; cells are the median over rounds (min–max). Produced by \`node bench/peers/run.mjs${r.args.length ? ` ${r.args.join(' ')}` : ''}\` in ${r.durationS} s.`,
    '',
    `| figure | ${analytics.map((s) => `${s.label} ${s.version}`).join(' | ')} | ours / best peer |`,
    `|---|${analytics.map(() => '---:').join('|')}|---:|`,
  ];
  for (const f of FIGURES) {
    const ra = r.ratios[f.key];
    const ratio = ra ? `${ra.ratio ?? 'n/a'} (vs ${ra.bestPeer})` : 'n/a';
    lines.push(`| ${f.label} | ${analytics.map((s) => fmt(s.figures[f.key])).join(' | ')} | ${ratio} |`);
  }
  lines.push('');
  lines.push('`track` figures: each synchronous call timed on its own (cross-origin isolated page, 5 µs clock), ' +
    `${TRACK_N.toLocaleString('en')} calls after ${WARM_N.toLocaleString('en')} warm-up, chunks of 100 per task; per round the median/p95/p99 of those calls. ` +
    'Main-thread µs/event: CDP TaskDuration over the timed calls plus delivery, net of the same loop calling a no-op.');
  if (r.ratios.wireBytesVsSegment) {
    const w = r.ratios.wireBytesVsSegment;
    lines.push('', `Bytes on the wire per 1,000 events, ours / Segment: ${w.ours} KiB / ${w.segment} KiB = **${w.ratio}**.`);
  }
  const dec = r.sdks.filter((s) => s.kind === 'decide' || (s.ours && s.rounds.some((x) => x.decide)));
  if (dec.length) {
    lines.push('', `Decisions: ${DECIDE_FEATURES} features, each a targeting rule (3 conditions) and an experiment rule; one decision evaluates all of them for one user.`, '',
      '| SDK | size brotli 11 (KiB) | µs per decision, median (min–max of round medians) | p95 | µs per feature |', '|---|---:|---:|---:|---:|');
    for (const s of dec) {
      const med = spread(s.rounds.map((x) => x.decide?.perDecisionUs?.median));
      const p95 = spread(s.rounds.map((x) => x.decide?.perDecisionUs?.p95));
      const pf = spread(s.rounds.map((x) => x.decide?.perFeatureUs), 3);
      lines.push(`| ${s.label} ${s.version} | ${fmt(s.figures.size)} | ${fmt(med)} | ${fmt(p95)} | ${fmt(pf)} |`);
    }
  }
  const problems = r.sdks.flatMap((s) => [
    ...s.rounds.flatMap((x, i) => Object.entries(x).filter(([, v]) => v && v.error).map(([k, v]) => `${s.name} round ${i + 1} ${k}: ${v.error}`)),
    ...(s.external.length ? [`${s.name} tried to reach (blocked): ${s.external.slice(0, 5).join(', ')}`] : []),
    ...(s.pageErrors.length ? [`${s.name} page errors: ${s.pageErrors.slice(0, 3).join(' / ')}`] : []),
  ]);
  if (problems.length) lines.push('', 'Notes from the run:', '', ...problems.map((p) => `- ${p}`));
  lines.push('');
  return lines.join('\n');
}

// ---------- main ----------

async function loadAdapters() {
  const dir = join(HERE, 'adapters');
  const all = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.mjs')).sort()) {
    const a = (await import(pathToFileURL(join(dir, f)).href)).default;
    all.push(a);
  }
  // Ours first, then peers, then decision-only adapters.
  all.sort((a, b) => (b.ours ? 1 : 0) - (a.ours ? 1 : 0) || (a.variant ? 1 : 0) - (b.variant ? 1 : 0)
    || (a.kind === 'decide') - (b.kind === 'decide'));
  return only ? all.filter((a) => only.includes(a.name)) : all;
}

async function main() {
  const adapters = await loadAdapters();
  if (!adapters.length) throw new Error(`no adapter matches --only ${only}`);
  const loadStart = loadavg();
  // Nothing leaves the machine: every host name but 127.0.0.1 fails to resolve.
  const browser = await launch({ args: ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'] });
  const result = { date: new Date().toISOString(), args: argv, rounds: ROUNDS, machine: machine(browser.version()) };
  result.workload = { trackCalls: TRACK_N, warmUp: WARM_N, lifecycleEvents: LIFE_N, closeWaitMs: CLOSE_WAIT_MS, decideFeatures: DECIDE_FEATURES };
  const state = new Map(adapters.map((a) => [a.name, { startupMs: [], served: new Set(), external: new Set(), pageErrors: [], rounds: [] }]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const order = adapters.map((_, i) => adapters[(i + r) % adapters.length]);
      log(`round ${r + 1}/${ROUNDS}: ${order.map((a) => a.name).join(', ')}`);
      for (const a of order) {
        const st = state.get(a.name);
        const n0 = st.startupMs.length;
        const out = await measure(browser, a, st);
        out.startupMs = round(quantile(st.startupMs.slice(n0).sort((x, y) => x - y), 0.5), 1);
        out.startupSamplesMs = st.startupMs.slice(n0).map((v) => round(v, 1));
        st.rounds.push(out);
      }
    }
  } finally {
    await browser.close();
  }
  result.machine.loadAverage = { start: loadStart.map((v) => round(v, 2)), end: loadavg().map((v) => round(v, 2)) };
  result.sdks = adapters.map((a) => {
    const st = state.get(a.name);
    const sdk = {
      name: a.name,
      label: a.label,
      ours: Boolean(a.ours),
      variant: a.variant ?? null,
      kind: a.kind ?? 'analytics',
      package: a.package ?? '@threadline/web (npm/)',
      version: a.version,
      bundle: a.bundle,
      settings: a.settings,
      size: sizeOf(st.served),
      external: [...st.external],
      pageErrors: [...new Set(st.pageErrors)],
      rounds: st.rounds,
    };
    sdk.figures = figureValues(sdk);
    return sdk;
  });
  result.ratios = ratios(result);
  result.durationS = round((Date.now() - started) / 1000, 1);
  const md = markdown(result);
  if (only || onlyPhases || argv.includes("--no-write")) {
    console.log(JSON.stringify(result.sdks.map((s) => ({ name: s.name, figures: s.figures, rounds: s.rounds.map(({ track, ...x }) => ({ ...x, track: track && { ...track } })) })), null, 1));
  } else {
    writeFileSync(join(HERE, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(HERE, 'results.md'), md);
  }
  console.log(md);
  log(`done in ${result.durationS} s`);
}

main().catch((e) => {
  console.error(`bench: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
