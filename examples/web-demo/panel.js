// The live panel: what this page tracked, the SDK's queue (`stats()`), the
// consent in force, the identity, the on-device decisions (which rules
// revision, which offer each slot got and why: default, personalised, or an
// experiment's variant), exactly what the SDK stored on the device
// (its cookie and localStorage keys, read back from the browser), and what
// the collector received (`GET /stats`, `GET /events`),
// refreshed twice a second while the page is visible. Nodes are rewritten
// only when their content changes, so an idle panel costs next to nothing.

const REFRESH_MS = 500;
const SHOW_TRACKED = 40;
const SHOW_RECEIVED = 20;
const PAGE = 500; // rows per GET /events request

import { storedItems } from './consent.js';

export function startPanel({ demo, error, esc }) {
  const el = (id) => document.getElementById(id);
  const ui = {
    status: el('sdk-status'),
    note: el('panel-note'),
    sdk: el('sdk-stats'),
    identity: el('identity'),
    consent: el('consent'),
    stored: el('stored'),
    tracked: el('tracked'),
    trackedCount: el('tracked-count'),
    collector: el('collector-stats'),
    perEvent: el('per-event'),
    received: el('received'),
    flush: el('flush-btn'),
    rulesStatus: el('rules-status'),
    decisions: el('decisions'),
    outage: el('outage-btn'),
  };

  const seen = new Set(); // messageIds the collector holds
  let lastRows = []; // the last SHOW_RECEIVED rows of GET /events
  let cursor = 0; // highest rowid read so far (row ids never repeat)
  let collector = null; // GET /stats
  let collectorError = null;
  let polling = false;
  let outage = false;
  let noteTimer = 0;

  const set = (node, html) => {
    if (node.__html !== html) {
      node.innerHTML = html;
      node.__html = html;
    }
  };
  const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });
  const short = (id) => esc(String(id).slice(0, 8));
  const stat = (label, value, cls = '') => `<div class="stat ${cls}"><dt>${label}</dt><dd>${value}</dd></div>`;
  const bytes = (n) => (n >= 10240 ? `${(n / 1024).toFixed(0)} KB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n} B`);

  function note(text, sticky = false) {
    clearTimeout(noteTimer);
    ui.note.textContent = text;
    ui.note.hidden = !text;
    if (text && !sticky) noteTimer = setTimeout(() => (ui.note.hidden = true), 5000);
  }

  async function json(path, init) {
    const r = await fetch(path, { cache: 'no-store', ...init });
    if (!r.ok) throw new Error(`${init?.method || 'GET'} ${path.split('?')[0]}: HTTP ${r.status}`);
    return r.json();
  }

  // --- SDK side ------------------------------------------------------------

  function renderSdk() {
    const c = demo.client;
    if (!c) {
      set(ui.status, 'SDK not loaded');
      ui.status.className = 'pill bad';
      set(ui.sdk, `<p class="muted">${esc(error ? String(error.message || error) : 'Starting…')}</p>`);
      return;
    }
    const s = c.stats();
    const now = Date.now();
    const dropped = (s.droppedQueueFull || 0) + (s.droppedRejected || 0) + (s.droppedMaxAttempts || 0) + (s.droppedExpired || 0)
      + (s.droppedConsent || 0) + (s.droppedHeldFull || 0);
    const backoff = s.backoffUntil && s.backoffUntil > now ? `${((s.backoffUntil - now) / 1000).toFixed(1)} s` : '—';
    set(ui.sdk, [
      stat('Queued', s.queued, s.queued ? 'warn' : ''),
      stat('Held', s.held, s.held ? 'warn' : ''),
      stat('In flight', s.inFlight, s.inFlight ? 'warn' : ''),
      stat('Delivered', s.delivered, 'good'),
      stat('Uploads', s.uploads),
      stat('Retries', s.retries, s.retries ? 'warn' : ''),
      stat('Beaconed', s.beaconed),
      stat('Restored', s.restored),
      stat('Dropped', dropped, dropped ? 'bad' : ''),
      stat('Last status', s.lastStatus ?? '—', s.lastStatus >= 400 ? 'bad' : ''),
      stat('Retry in', backoff, backoff !== '—' ? 'warn' : ''),
      stat('Storage', s.storageAvailable ? 'local' : 'memory', s.storageAvailable ? 'good' : 'bad'),
    ].join(''));

    let label = 'ready';
    let cls = 'pill good';
    if (outage) [label, cls] = ['outage simulated', 'pill bad'];
    else if (backoff !== '—') [label, cls] = ['backing off', 'pill warn'];
    else if (s.queued || s.inFlight) [label, cls] = ['sending…', 'pill warn'];
    set(ui.status, label);
    ui.status.className = cls;
  }

  function renderIdentity() {
    const who = demo.client?.getIdentity();
    if (!who) {
      set(ui.identity, '<p class="muted">—</p>');
      return;
    }
    const traits = who.traits && Object.keys(who.traits).length ? JSON.stringify(who.traits) : '—';
    const ids = Object.entries(who.ids || {});
    set(ui.identity, `
      <dt>deviceId</dt><dd>${who.deviceId ? `<code>${esc(who.deviceId)}</code>` : '<span class="muted">none (analytics not granted)</span>'}</dd>
      <dt>sessionId</dt><dd>${who.session ? `<code>${esc(who.session.id)}</code>` : '—'}</dd>
      <dt>userId</dt><dd>${who.userId ? `<code>${esc(who.userId)}</code>` : '<span class="muted">anonymous</span>'}</dd>
      <dt>traits</dt><dd><code>${esc(traits)}</code></dd>
      ${ids.map(([ns, v]) => `<dt>ids.${esc(ns)}</dt><dd><code title="${esc(v)}">${esc(v.length > 24 ? `${v.slice(0, 24)}…` : v)}</code></dd>`).join('')}`);
  }

  function renderConsent() {
    const c = demo.client?.getConsent();
    if (!c) {
      set(ui.consent, '<p class="muted">—</p>');
      return;
    }
    const cls = (v) => (v === 'granted' ? 'good' : v === 'denied' ? 'bad' : 'warn');
    set(ui.consent, `
      ${['analytics', 'personalization', 'advertising', 'sale']
        .map((p) => `<dt>${p}</dt><dd><span class="pill ${cls(c[p])}">${esc(c[p])}</span></dd>`)
        .join('')}
      <dt>GPC</dt><dd>${c.gpc ? 'on: advertising and sale denied' : 'off'}</dd>`);
  }

  function renderStored() {
    const items = storedItems();
    set(
      ui.stored,
      items.length
        ? items
            .map(
              (i) => `<dt>${esc(i.where === 'cookie' ? `cookie ${i.name}` : i.name)}</dt>
                <dd class="stored"><code>${esc(i.value.length > 140 ? `${i.value.slice(0, 140)}… (${i.value.length} chars)` : i.value)}</code></dd>`,
            )
            .join('')
        : '<p class="muted">Nothing: no cookie, no localStorage key.</p>',
    );
  }

  function renderTracked() {
    const log = demo.log;
    set(ui.trackedCount, `${log.length} event${log.length === 1 ? '' : 's'}`);
    if (!log.length) {
      set(ui.tracked, '<li class="muted empty">Nothing yet: click around the shop.</li>');
      return;
    }
    const rows = [];
    for (let i = log.length - 1; i >= 0 && rows.length < SHOW_TRACKED; i--) {
      const e = log[i];
      const ok = seen.has(e.id);
      rows.push(`
        <li class="ev${e.load !== demo.loadNo ? ' earlier' : ''}">
          <span class="kind k-${esc(e.kind)}">${esc(e.kind)}</span>
          <span class="ev-name" title="${esc(e.name)}">${esc(e.name)}</span>
          <code class="ev-id" title="${esc(e.id)}">${short(e.id)}</code>
          <time>${clock(e.t)}</time>
          <span class="ev-state ${ok ? 'ok' : 'wait'}" title="${ok ? 'stored by the collector' : 'not at the collector yet'}">${ok ? '✓' : '•'}</span>
        </li>`);
    }
    if (log.length > SHOW_TRACKED) rows.push(`<li class="muted more">+ ${log.length - SHOW_TRACKED} earlier</li>`);
    set(ui.tracked, rows.join(''));
  }

  // --- decisions -------------------------------------------------------------
  // Built with textContent: offer ids and content come from the rules file.

  const SHOW_DECISIONS = 12;
  const node = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const setKey = (n, key) => {
    if (n.__key === key) return false;
    n.__key = key;
    return true;
  };

  function renderDecisions() {
    const c = demo.client;
    const rules = demo.rules;
    let revision = rules?.revision ?? null;
    try {
      revision = c?.rulesRevision?.() ?? revision;
    } catch {
      // keep the last known revision
    }
    let line;
    let bad = false;
    if (!c || typeof c.decide !== 'function') line = 'Rules: this SDK build has no decisions API';
    else if (revision) line = `Rules: revision ${revision} · signature verified`;
    else line = 'Rules: not loaded yet (slots show the defaults)';
    if (rules?.error) {
      line += ` · last update refused: ${rules.error.kind}${rules.error.message ? ` (${rules.error.message})` : ''}`;
      bad = true;
    }
    if (setKey(ui.rulesStatus, `${line}|${bad}`)) {
      ui.rulesStatus.textContent = line;
      ui.rulesStatus.classList.toggle('bad', bad);
    }

    const list = demo.decisions || [];
    const shown = list.slice(-SHOW_DECISIONS).reverse();
    const key = JSON.stringify(shown.map((d) => [d.decisionId, d.clicked, d.displayedId]));
    if (!setKey(ui.decisions, key)) return;
    if (!shown.length) {
      ui.decisions.replaceChildren(node('li', 'muted empty', 'No decision yet: open the shop\'s home page.'));
      return;
    }
    ui.decisions.replaceChildren(
      ...shown.map((d) => {
        const li = node('li', 'dec');
        li.dataset.offerId = d.offerId;
        const personal = !d.isDefault;
        li.append(
          node('span', `kind ${personal ? 'k-personal' : 'k-default'}`, d.placement),
          node('span', 'dec-offer', d.offerId),
          node('time', '', clock(d.at)),
        );
        const why = [];
        if (d.experimentId) {
          why.push(`A/B test ${d.experimentId}, variant ${d.variantId}`);
          if (d.variantId === 'holdout') why.push('held out: the default offer');
          else if (d.isDefault) why.push('default offer');
        } else {
          why.push(d.isDefault ? 'default offer' : 'chosen by the rules from this browser\'s history');
        }
        why.push(d.clicked ? 'displayed, clicked' : d.displayedId ? 'displayed' : 'displayed before (not reported again)');
        li.append(node('span', 'dec-why', why.join(' · ')));
        return li;
      }),
    );
  }

  // --- collector side --------------------------------------------------------

  function renderCollector() {
    if (collectorError && !collector) {
      set(ui.collector, `<p class="muted">${esc(collectorError)}</p>`);
      return;
    }
    if (!collector) return;
    const s = collector;
    const faults = s.faults || {};
    set(ui.perEvent, s.received ? `${Math.round(s.bytes / s.received)} B/event on the wire` : 'GET /stats');
    set(ui.collector, [
      stat('Received', s.received),
      stat('Distinct', s.distinct, 'good'),
      stat('Duplicates', s.duplicates, s.duplicates ? 'warn' : ''),
      stat('Requests', s.requests),
      stat('Bytes', bytes(s.bytes || 0)),
      stat('Gzipped', s.gzipRequests),
      stat('Beacons', s.beaconRequests),
      stat('Failed (5xx)', faults.failed || 0, faults.failed ? 'bad' : ''),
    ].join(''));
    if (!lastRows.length) {
      set(ui.received, '<li class="muted empty">Nothing received yet.</li>');
      return;
    }
    const rows = [];
    for (let i = lastRows.length - 1; i >= 0; i--) {
      const r = lastRows[i];
      const name = r.type === 'track' ? r.event : r.type === 'page' ? r.name || '(page)' : r.type === 'identify' ? r.userId : '';
      rows.push(`
        <li class="ev">
          <span class="kind k-${esc(r.type)}">${esc(r.type)}</span>
          <span class="ev-name" title="${esc(name)}">${esc(name)}</span>
          <code class="ev-id" title="${esc(r.messageId)}">${short(r.messageId)}</code>
          <time title="receivedAt">${r.receivedAt ? clock(r.receivedAt) : ''}</time>
          <span class="ev-state ${r.userId ? 'user' : ''}" title="${r.userId ? `userId ${esc(r.userId)}` : 'anonymous'}">${r.userId ? '👤' : ''}</span>
        </li>`);
    }
    set(ui.received, rows.join(''));
  }

  /** Reads the rows after `cursor`, a page at a time, keeping the last ones. */
  async function pullEvents() {
    for (let n = 0; n < 20; n++) {
      const rows = await json(`/events?after=${cursor}&limit=${PAGE}`);
      for (const r of rows) {
        seen.add(r.messageId);
        if (r.rowid > cursor) cursor = r.rowid;
      }
      lastRows = lastRows.concat(rows).slice(-SHOW_RECEIVED);
      if (rows.length < PAGE) return;
    }
  }

  async function pollCollector() {
    if (polling) return;
    polling = true;
    try {
      const [stats] = await Promise.all([json('/stats'), pullEvents()]);
      if (collector && stats.received < collector.received) {
        // POST /admin/reset: the stored events are gone (row ids go on).
        seen.clear();
        lastRows = [];
      }
      collector = stats;
      collectorError = null;
    } catch (e) {
      collectorError = `Collector unreachable (${e.message})`;
    } finally {
      polling = false;
    }
  }

  // --- buttons -----------------------------------------------------------------

  function showOutage() {
    ui.outage.setAttribute('aria-pressed', String(outage));
    ui.outage.textContent = outage ? 'End outage' : 'Simulate outage';
    ui.outage.classList.toggle('btn-danger', outage);
    ui.outage.classList.toggle('btn-ghost', !outage);
    document.body.classList.toggle('outage', outage);
  }

  ui.flush.addEventListener('click', async () => {
    const c = demo.client;
    if (!c) return;
    ui.flush.disabled = true;
    const t0 = performance.now();
    await c.flush();
    const ms = performance.now() - t0;
    const s = c.stats();
    ui.flush.disabled = false;
    note(s.queued
      ? `flush() resolved after ${ms.toFixed(0)} ms; ${s.queued} event(s) wait for a retry.`
      : `flush() resolved after ${ms.toFixed(0)} ms; the queue is empty.`);
    tick();
  });

  let toggles = 0; // a fault read that raced a toggle is ignored
  ui.outage.addEventListener('click', async () => {
    toggles++;
    ui.outage.disabled = true;
    try {
      const f = await json('/admin/faults', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ failRate: outage ? 0 : 1 }),
      });
      outage = f.failRate >= 1;
      note(outage
        ? 'The collector now answers 5xx to every batch. Keep shopping: events stay queued (and persisted), retries back off. End the outage to watch them arrive.'
        : 'Outage over: the next retry delivers everything that waited.', outage);
    } catch (e) {
      note(`Could not change the collector's faults (${e.message}).`);
    } finally {
      ui.outage.disabled = false;
      showOutage();
      tick();
    }
  });

  /** Follows the collector's fail rate (another tab may have changed it). */
  async function readFaults() {
    const asked = toggles;
    try {
      const f = await json('/admin/faults');
      const now = f.failRate >= 1;
      if (asked === toggles && now !== outage) {
        outage = now;
        showOutage();
        note(outage ? 'An outage is being simulated: the collector answers 5xx to every batch.' : '', outage);
      }
    } catch {
      // an --admin-token collector: the button reports the error when used
    }
  }
  readFaults();

  // --- loop --------------------------------------------------------------------

  function tick() {
    if (document.hidden) return;
    renderSdk();
    renderConsent();
    renderIdentity();
    renderStored();
    renderDecisions();
    renderTracked();
    renderCollector();
  }

  let ticks = 0;
  setInterval(() => {
    if (document.hidden) return;
    if (++ticks % 4 === 0 && !ui.outage.disabled) readFaults();
    tick();
    pollCollector().then(() => {
      renderCollector();
      renderTracked();
    });
  }, REFRESH_MS);
  document.addEventListener('visibilitychange', tick);
  tick();
  pollCollector().then(tick);
  return { refresh: tick };
}
