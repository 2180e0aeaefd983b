// Activity hub: finds a person through the collector's admin API and shows what it
// holds about them. Data only ever enters the page as text (textContent, attributes).
const KEY = 'threadline.hub.token';
const $ = (id) => document.getElementById(id);
const PLATFORMS = { web: ['Web', 'W'], android: ['Android', 'A'], ios: ['iOS', 'i'] };
let shown = null; // the person on screen
let newestFirst = true;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
  // append() turns anything but a node into a text node.
  for (const k of kids.flat()) if (k != null && k !== false) e.append(k);
  return e;
}

const token = () => sessionStorage.getItem(KEY);

/** `2026-11-24 10:50:17 UTC` in a <time>; the exact value is in `datetime`. */
function when(iso) {
  if (!iso) return el('span', { class: 'muted' }, 'never');
  const d = new Date(iso);
  const text = isNaN(d) ? iso : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  return el('time', { datetime: iso }, text);
}

/** A long id cut in the middle; the whole value is its title. */
function short(value) {
  const s = String(value ?? '');
  return el('code', { title: s }, s.length > 20 ? `${s.slice(0, 10)}…${s.slice(-6)}` : s);
}

function platform(p, id) {
  const [label, icon] = PLATFORMS[p] || ['Other', '?'];
  return el('span', { class: `plat ${PLATFORMS[p] ? p : 'other'}`, 'data-platform': p || 'other' },
    el('span', { class: 'icon', 'aria-hidden': 'true' }, icon), ` ${label}`, id ? ' ' : null, id ? short(id) : null);
}

// Purposes are granted/denied/pending; a flag such as `gpc` is a boolean.
const consentText = (v) => (typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v));
const consentClass = (v) => (['granted', 'denied'].includes(v) ? v : typeof v === 'boolean' ? 'flag' : 'pending');

async function api(path, method = 'GET') {
  let r;
  try {
    r = await fetch(path, { method, headers: { authorization: `Bearer ${token()}` }, cache: 'no-store' });
  } catch (e) {
    throw Object.assign(new Error(`Could not reach the collector (${e.message}).`), { status: 0 });
  }
  const body = await r.json().catch(() => null);
  if (r.ok) return body;
  const what = { 401: 'Admin token refused', 403: 'Admin access refused', 404: 'Not found' }[r.status] || 'Request failed';
  const said = body && typeof body.error === 'string' ? `: ${body.error}` : '';
  throw Object.assign(new Error(`${what} (HTTP ${r.status}${said}).`), { status: r.status });
}

const status = (text) => ($('status').textContent = text);
const nameOf = (p) => p.userIds.join(', ') || 'Anonymous person';
const personUrl = (id) => `/admin/api/people/${encodeURIComponent(id)}`;

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
}

/** A request starts: the last error goes, `text` says what is happening. */
function begin(text) {
  showError('');
  status(text);
}

function fail(e) {
  status('');
  showError(e.message);
  if (e.status === 401) {
    sessionStorage.removeItem(KEY);
    showForms();
    $('token').focus();
  }
}

function showForms() {
  const has = !!token();
  $('token-form').hidden = has;
  $('search-form').hidden = !has;
  $('forget').hidden = !has;
}

async function search(q) {
  begin(`Searching for ${q}…`);
  $('results').hidden = true;
  try {
    const { people } = await api(`/admin/api/search?q=${encodeURIComponent(q)}`);
    const list = $('result-list');
    list.replaceChildren(...people.map((p) => el('li', {},
      el('a', { href: `#/people/${encodeURIComponent(p.id)}` }, nameOf(p)),
      ` · ${p.devices} device${p.devices === 1 ? '' : 's'} · last seen `, when(p.lastSeen), ' · ', short(p.id))));
    if (!people.length) list.append(el('li', { class: 'muted' }, `No one matches “${q}”.`));
    status(`${people.length} ${people.length === 1 ? 'person' : 'people'} found.`);
    $('results').hidden = false;
  } catch (e) {
    fail(e);
  }
}

const section = (title, ...body) => el('section', {}, el('h3', {}, title), ...body);

function table(head, rows, empty) {
  if (!rows.length) return el('p', { class: 'muted' }, empty);
  return el('table', {}, el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))));
}

function device(d) {
  const lib = d.library ? `${d.library.name || '?'} ${d.library.version || ''}`.trim() : 'unknown';
  const order = ['analytics', 'personalization', 'advertising', 'sale'];
  const rank = (k) => (order.includes(k) ? order.indexOf(k) : order.length);
  const consent = Object.entries(d.consent || {}).sort(([a], [b]) => rank(a) - rank(b));
  const row = (k, ...v) => [el('dt', {}, k), el('dd', {}, ...v)];
  return el('li', { class: 'device', 'data-device': d.anonymousId, 'data-platform': d.platform },
    el('h4', {}, platform(d.platform)),
    el('dl', {},
      row('Device id', short(d.anonymousId)),
      row('Library', lib),
      row('OS', d.os || 'unknown'),
      row('Events', d.events),
      row('First seen', when(d.firstSeen)),
      row('Last seen', when(d.lastSeen)),
      row('Consent', consent.length
        ? el('ul', { class: 'badges' }, consent.map(([k, v]) => {
          const s = consentText(v);
          return el('li', { class: `badge ${consentClass(v)}`, 'data-purpose': k, 'data-state': s }, `${k}: ${s}`);
        }))
        : el('span', { class: 'muted' }, 'none sent'),
      d.consentSeen ? el('span', { class: 'muted' }, ' seen ', when(d.consentSeen)) : null)));
}

function entry(m) {
  const o = m.offer;
  const props = m.properties && Object.keys(m.properties).length ? m.properties : null;
  return el('li', { class: o ? `ev offer ${o.action}` : 'ev', 'data-message-id': m.messageId,
    'data-timestamp': m.timestamp, 'data-offer': o ? o.action : null },
  when(m.timestamp), ' ', platform(m.platform, m.anonymousId), ' ',
  el('span', { class: 'type' }, m.type), ' ', el('strong', {}, m.event || m.name || ''),
  m.type === 'identify' && m.userId ? [' as ', short(m.userId)] : null,
  o ? el('span', { class: 'offer-tag' }, `${o.action === 'clicked' ? 'Offer clicked' : 'Offer shown'}: ${o.offerId}${o.placement ? ` @ ${o.placement}` : ''}`) : null,
  props ? el('details', {}, el('summary', {}, `Properties (${Object.keys(props).length})`),
    el('pre', {}, JSON.stringify(props, null, 2))) : null);
}

function renderTimeline() {
  const list = shown.timeline || [];
  $('timeline').replaceChildren(...(newestFirst ? [...list].reverse() : list).map(entry));
  $('timeline').setAttribute('aria-label', newestFirst ? 'Newest first' : 'Oldest first');
  $('order').textContent = newestFirst ? 'Show oldest first' : 'Show newest first';
}

function renderPerson(p) {
  shown = p;
  const name = nameOf(p);
  const traits = Object.entries(p.traits || {});
  const h = el('h2', { tabindex: '-1', id: 'person-title' }, name);
  $('person').replaceChildren(
    h,
    el('p', {}, 'Person id ', short(p.id), ' ',
      el('button', { type: 'button', id: 'erase', class: 'danger' }, 'Erase this person')),
    section('Linked identities', table(['Kind', 'Value', 'First seen', 'Last seen'],
      (p.identities || []).map((i) => [i.kind, short(i.value), when(i.firstSeen), when(i.lastSeen)]), 'None.')),
    section(`Devices (${p.devices.length})`, el('ul', { class: 'devices' }, p.devices.map(device))),
    section('Traits', table(['Trait', 'Value'],
      traits.map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]), 'None.')),
    section('Audiences', p.audiences && p.audiences.length
      ? el('ul', { class: 'chips' }, p.audiences.map((a) => el('li', { class: 'chip' }, a)))
      : el('p', { class: 'muted' }, 'In no audience.'),
    el('p', { class: 'muted' }, p.revision ? `Rules revision ${p.revision}` : 'No rules artifact loaded.')),
    section('Merges', table(['When', 'Reason', 'Kept', 'Merged', 'Message'],
      (p.merges || []).map((m) => [when(m.at), m.reason, short(m.kept), short(m.merged), short(m.messageId)]), 'None.')),
    section(`Timeline (${(p.timeline || []).length})`,
      el('button', { type: 'button', id: 'order' }),
      el('ol', { id: 'timeline', class: 'timeline' })));
  renderTimeline();
  $('order').addEventListener('click', () => {
    newestFirst = !newestFirst;
    renderTimeline();
  });
  $('erase').addEventListener('click', () => {
    $('erase-who').textContent = name;
    $('erase-dialog').showModal();
    $('erase-cancel').focus();
  });
  $('person').hidden = false;
  h.focus();
}

async function openPerson(id) {
  begin('Loading…');
  $('results').hidden = $('person').hidden = true;
  try {
    renderPerson(await api(personUrl(id)));
    status('');
  } catch (e) {
    if (e.status === 404) e.message = `No person ${id}: unknown, erased or merged into another (404).`;
    fail(e);
  }
}

async function erase() {
  $('erase-dialog').close();
  const p = shown;
  begin('Erasing…');
  try {
    const { removed } = await api(personUrl(p.id), 'DELETE');
    shown = null;
    $('result-list').replaceChildren();
    const h = el('h2', { tabindex: '-1' }, 'Erased');
    $('person').replaceChildren(h, el('p', { id: 'erase-report' },
      `Erased ${nameOf(p)}: ${removed.events} events, ${removed.identities} identities, `
      + `${removed.devices} devices, ${removed.merges} merges removed.`));
    status('');
    h.focus();
  } catch (e) {
    fail(e);
  }
}

function route() {
  showForms();
  if (!token()) return;
  const m = location.hash.match(/^#\/people\/(.+)$/);
  if (m) openPerson(decodeURIComponent(m[1]));
  else {
    $('person').hidden = true;
    $('results').hidden = !$('result-list').children.length;
  }
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $('token').value.trim());
  $('token').value = '';
  showError('');
  route();
  if (!$('search-form').hidden) $('q').focus();
});
$('search-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = $('q').value.trim();
  if (location.hash.startsWith('#/people/')) history.pushState(null, '', '#/');
  $('person').hidden = true;
  if (q) search(q);
});
$('forget').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  shown = null;
  $('person').hidden = $('results').hidden = true;
  $('result-list').replaceChildren();
  route();
});
$('erase-cancel').addEventListener('click', () => $('erase-dialog').close());
$('erase-confirm').addEventListener('click', erase);
window.addEventListener('hashchange', route);
route();
