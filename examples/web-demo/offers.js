// On-device decisions in the shop: the `hero` banner (an A/B test) and the
// `home` offer (the slacks story) come from `client.decide(...)`, answered by
// the SDK from the signed rules artifact (rules/shop.json) and this
// browser's own history; nothing about the visitor is sent to decide.
//
// Offer content comes from the rules file, so it is treated as data: it is
// written with textContent and attributes only, never as HTML, and a link is
// only followed when it stays inside the shop (`#/...`).

/** What the slots show before any rules are loaded (the artifact's defaults). */
const FALLBACK = {
  hero: {
    eyebrow: 'Autumn edit',
    headline: 'Good clothes, tracked honestly.',
    lede: 'Browse, add to cart and check out: each step is an event recorded by Threadline in a few microseconds, queued in this tab, and sent to the collector in batches that survive reloads and outages.',
  },
  home: {
    title: 'Free returns, always',
    text: 'Try it on at home; if it is not right, send it back within 30 days.',
    cta: 'Browse the autumn edit',
    href: '#/',
  },
};

const SHOW_DECISIONS = 12;

const text = (v) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== '') node.append(c);
  return node;
}

/** Only in-shop links: `#/...`. Anything else (javascript:, other sites) is dropped. */
function safeHref(href) {
  return typeof href === 'string' && /^#\/[\w\-./]*$/.test(href) ? href : null;
}

/**
 * @param {{ demo: any, record: (kind: string, name: string, call: (c: any) => any) => string | undefined }} opts
 */
export function startOffers({ demo, record }) {
  // The last decisions, newest last, for the panel: why each slot shows what it shows.
  demo.decisions = [];
  demo.rules = { ready: false, revision: null, error: null, loadedAt: null };

  const client = () => demo.client;
  const supported = () => typeof client()?.decide === 'function';

  function noteRules() {
    const c = client();
    if (!supported()) return;
    try {
      demo.rules.revision = c.rulesRevision?.() ?? demo.rules.revision;
    } catch {
      // the panel shows the last known revision
    }
  }

  /** The decision for `placement`, or null before any rules (or without the API). */
  function decide(placement) {
    if (!supported()) return null;
    try {
      const [d] = client().decide(placement, { max: 1 });
      return d || null;
    } catch (e) {
      console.error(`threadline: decide(${placement}) failed`, e);
      return null;
    }
  }

  /** Reports that `d` was shown, once per decision, and logs it for the panel. */
  function displayed(d) {
    const entry = {
      at: Date.now(),
      placement: d.placement,
      offerId: d.offerId,
      experimentId: d.experimentId ?? null,
      variantId: d.variantId ?? null,
      isDefault: d.isDefault,
      decisionId: d.decisionId,
      clicked: false,
    };
    demo.decisions.push(entry);
    if (demo.decisions.length > SHOW_DECISIONS * 4) demo.decisions.splice(0, demo.decisions.length - SHOW_DECISIONS * 4);
    entry.displayedId = record('track', 'Offer Displayed', (c) => c.displayed(d)) ?? null;
    return entry;
  }

  function clicked(d, entry) {
    const id = record('track', 'Offer Clicked', (c) => c.clicked(d));
    if (entry) {
      entry.clicked = true;
      entry.clickedId = id ?? null;
    }
  }

  function tag(node, d) {
    node.dataset.placement = d ? d.placement : '';
    node.dataset.offerId = d ? d.offerId : 'fallback';
    node.dataset.default = String(d ? d.isDefault : true);
    node.dataset.decisionId = d ? d.decisionId : '';
    node.dataset.experimentId = d?.experimentId ?? '';
    node.dataset.variantId = d?.variantId ?? '';
  }

  function heroNode(content) {
    const href = safeHref(content.href);
    return [
      el('p', { class: 'eyebrow' }, text(content.eyebrow)),
      el('h1', {}, text(content.headline)),
      el('p', { class: 'lede' }, text(content.lede)),
      href && content.cta ? el('a', { class: 'btn hero-cta', href }, text(content.cta)) : null,
    ];
  }

  function homeNode(content) {
    const href = safeHref(content.href);
    return [
      el('div', { class: 'promo-body' },
        el('strong', { class: 'promo-title' }, text(content.title)),
        el('p', { class: 'promo-text' }, text(content.text)),
        content.code ? el('p', { class: 'promo-code' }, 'Code ', el('code', {}, text(content.code))) : null),
      href && content.cta ? el('a', { class: 'btn btn-primary promo-cta', href }, text(content.cta)) : null,
    ];
  }

  const BUILD = { hero: heroNode, home: homeNode };

  /** Fills the slot `node` for `placement`; returns the decision shown (or null). */
  function fill(node, placement) {
    if (!node) return null;
    const d = decide(placement);
    const content = d && d.content && typeof d.content === 'object' ? d.content : FALLBACK[placement];
    node.replaceChildren(...BUILD[placement](content).filter(Boolean));
    node.classList.toggle('personalised', Boolean(d && !d.isDefault));
    tag(node, d);
    if (!d) {
      node.onclick = null;
      return null;
    }
    const entry = displayed(d);
    // One click report per decision; the link itself navigates as usual.
    node.onclick = (e) => {
      if (!e.target.closest('a')) return;
      if (!entry.clicked) clicked(d, entry);
    };
    return d;
  }

  /** Renders the home page's two slots (if they are in the page). */
  function renderHome() {
    noteRules();
    fill(document.getElementById('hero-slot'), 'hero');
    fill(document.getElementById('home-slot'), 'home');
  }

  const onHome = () => Boolean(document.getElementById('home-slot'));

  /** Waits (up to `ms`) for rules; the first render shows defaults if they are late. */
  async function ready(ms) {
    const c = client();
    if (!supported() || typeof c.ready !== 'function') return false;
    try {
      demo.rules.ready = await c.ready(ms);
    } catch (e) {
      console.error('threadline: ready() failed', e);
      demo.rules.ready = false;
    }
    noteRules();
    return demo.rules.ready;
  }

  // New rules (first load, or a refresh) or a consent change redraw the
  // home slots, so a late artifact replaces the defaults without a reload.
  const c = client();
  if (c && typeof c.on === 'function') {
    try {
      c.on('rulesLoaded', (n) => {
        const changed = (n?.revision ?? null) !== demo.rules.revision;
        demo.rules.ready = true;
        demo.rules.revision = n?.revision ?? demo.rules.revision;
        demo.rules.loadedAt = Date.now();
        demo.rules.error = null;
        // Redraw only for new rules, or over the defaults shown while none
        // were loaded: every redraw is a new decision and a new impression.
        const showingFallback = document.getElementById('home-slot')?.dataset.offerId === 'fallback';
        if (onHome() && (changed || showingFallback)) renderHome();
      });
      c.on('rulesError', (n) => {
        demo.rules.error = { kind: n?.kind ?? 'rules', message: n?.message ?? '', at: Date.now() };
      });
      // Her profile from the collector (her other devices) arrived: the home
      // slot may change (no slacks discount after an order in the app).
      c.on('profileSync', (n) => {
        demo.profileSync = { audiences: n?.audiences ?? [], at: Date.now() };
        if (onHome()) renderHome();
      });
      c.on('profileSyncRefused', (n) => {
        demo.profileSync = { refused: n?.status ?? 401, at: Date.now() };
      });
    } catch (e) {
      // an SDK without these notices: the panel polls rulesRevision()
    }
  }

  return {
    ready,
    renderHome,
    refresh: () => {
      if (onHome()) renderHome();
    },
  };
}
