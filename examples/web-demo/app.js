// Threadline Outfitters: the demo shop. Plain ES modules, no framework, no
// build step. Routing follows `location.hash`; every route change is a
// `page()` and the shop's actions are Segment e-commerce `track` events.
//
// The home page's hero banner and offer are decided on the device from the
// signed rules in rules/shop.json (see offers.js): view the slacks twice and
// the home page offers a discount on them, until an order contains them.
//
// For the automated check (check.mjs) the page exposes
//   window.__demo = { client, ready, trackedIds, decisions, rules }
// where `trackedIds` holds the messageId of every event this visit tracked,
// across reloads (it lives in sessionStorage), and `decisions` the
// decisions the page displayed (newest last).

import { PRODUCTS, CURRENCY, product, money, amount, picture } from './catalog.js';
import { startPanel } from './panel.js';
import { startConsent } from './consent.js';
import { startOffers } from './offers.js';

const WRITE_KEY = 'demo-write-key';

// The rules artifact and the key its signature must verify with: the SDK
// refuses an artifact that is unsigned or signed by another key, and keeps
// the last good one. After editing rules/shop.json, sign it again (README).
const RULES = {
  url: '/rules/shop.json',
  publicKey: 'uOIoIx9qCt9D/N/aOpO/ZbnllHs+cAbRvdVJIi7wpzY=',
  // Revalidated every minute (If-None-Match, usually a 304): an edited and
  // re-signed artifact shows up in an open tab within a minute.
  refreshIntervalMs: 60_000,
};
// How long the first render waits for the rules before showing the defaults.
const RULES_WAIT_MS = 1500;
const KEY = {
  log: 'threadline-demo.log', // sessionStorage: what this visit tracked
  cart: 'threadline-demo.cart', // localStorage: the cart survives reloads
  checkout: 'threadline-demo.checkout', // sessionStorage: the open checkout
  orders: 'threadline-demo.orders', // sessionStorage: completed orders
  panel: 'threadline-demo.panel', // localStorage: panel open or closed
};

// --- small utilities ---------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);

/** Escapes text for use inside HTML (user input, collector data). */
function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function read(storage, key, fallback) {
  try {
    const raw = storage.getItem(key);
    return raw ? JSON.parse(raw) : fallback;
  } catch {
    return fallback;
  }
}

function write(storage, key, value) {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    // storage full or disabled: the demo keeps working in memory
  }
}

function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return prefix + Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('').slice(0, 10).toUpperCase();
}

// --- the SDK client and the log of what this page tracked ---------------------

const log = read(sessionStorage, KEY.log, []); // [{id, kind, name, t, load}]
const loadNo = (log.reduce((m, e) => Math.max(m, e.load || 0), 0) || 0) + 1;

const demo = {
  client: null,
  ready: null,
  trackedIds: log.map((e) => e.id),
  log,
  loadNo,
};
window.__demo = demo;

demo.ready = (async () => {
  const { createClient } = await import('/npm/dist/index.js');
  const client = await createClient({
    endpoint: location.origin,
    writeKey: WRITE_KEY,
    // Consent first: until the visitor answers the banner, events are held
    // in memory only; no id is created, nothing is stored or sent.
    consent: { default: 'pending' },
    batch: { maxAgeMs: 1000 },
    // Shorter backoff than the defaults so a visitor who ends a simulated
    // outage sees the queue drain within seconds, and more attempts so a
    // long outage does not drop the demo's events.
    retry: { baseBackoffMs: 500, maxBackoffMs: 5000, maxAttempts: 40 },
    // Decisions on the device: the artifact is fetched (revalidated with
    // If-None-Match), verified against the public key, and cached.
    rules: RULES,
  });
  demo.client = client;
  demo.readyMs = Math.round(performance.now()); // since navigation start
  return client;
})();

/** Runs one SDK call and records the event it made. */
function record(kind, name, call) {
  const client = demo.client;
  if (!client) return undefined;
  let id;
  try {
    id = call(client);
  } catch (e) {
    console.error(`threadline: ${kind} ${name} rejected:`, e);
    return undefined;
  }
  if (!id) return undefined; // client closed
  const entry = { id, kind, name, t: Date.now(), load: loadNo };
  log.push(entry);
  demo.trackedIds.push(id);
  write(sessionStorage, KEY.log, log);
  return id;
}

const track = (event, props) => record('track', event, (c) => c.track(event, props));
const page = (name, props) => record('page', name, (c) => c.page(name, props));
// The email goes in as a trait (the shop shows it back at checkout) and as a
// namespaced id, which the SDK normalises and hashes (SHA-256) on the device.
// `userToken` is what the shop's back end issues after sign-in (here the collector's
// demo-only /demo/token stands in): with it the SDK fetches the person's profile from
// the collector, so what she did on another device counts here too.
const identify = (userId, traits, ids, userToken) =>
  record('identify', userId, (c) => c.identify(userId, traits, userToken ? { ids, userToken } : { ids }));

/** A user token from the demo's stand-in back end; none when the collector runs without `--demo-tokens`. */
async function demoToken(userId) {
  try {
    const r = await fetch(`/demo/token?userId=${encodeURIComponent(userId)}`, { cache: 'no-store' });
    return r.ok ? (await r.json()).userToken : undefined;
  } catch {
    return undefined;
  }
}

// --- cart --------------------------------------------------------------------

function loadCart() {
  const cart = read(localStorage, KEY.cart, null);
  if (cart && typeof cart.id === 'string' && Array.isArray(cart.lines)) {
    cart.lines = cart.lines.filter((l) => product(l.productId) && l.quantity > 0);
    return cart;
  }
  return { id: randomId('C-'), lines: [] };
}

let cart = loadCart();

function saveCart() {
  write(localStorage, KEY.cart, cart);
  const count = cart.lines.reduce((n, l) => n + l.quantity, 0);
  const badge = $('#cart-count');
  badge.textContent = String(count);
  badge.classList.toggle('empty', count === 0);
}

function lineKey(productId, variant) {
  return `${productId}|${variant || ''}`;
}

/** A product as the Segment e-commerce spec describes it in events. */
function productProps(p, extra = {}) {
  return {
    product_id: p.id,
    sku: p.sku,
    category: p.category,
    name: p.name,
    brand: p.brand,
    price: amount(p.price),
    currency: CURRENCY,
    url: `${location.origin}${location.pathname}#/product/${p.id}`,
    ...extra,
  };
}

function lineProps(line, position) {
  const p = product(line.productId);
  return productProps(p, { variant: line.variant || undefined, quantity: line.quantity, position });
}

function totals(lines) {
  const subtotal = lines.reduce((s, l) => s + product(l.productId).price * l.quantity, 0);
  const shipping = subtotal === 0 || subtotal >= 10000 ? 0 : 600;
  const tax = Math.round(subtotal * 0.08);
  return { subtotal, shipping, tax, total: subtotal + shipping + tax };
}

// --- views -------------------------------------------------------------------

const view = () => $('#view');

function setTitle(title) {
  document.title = title ? `${title} · Threadline Outfitters` : 'Threadline Outfitters';
}

function toast(html) {
  let el = $('#toast');
  if (!el) {
    el = document.createElement('div');
    el.id = 'toast';
    el.className = 'toast';
    el.setAttribute('role', 'status');
    document.body.append(el);
  }
  el.innerHTML = html;
  el.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove('show'), 2600);
}

function renderList() {
  setTitle('Shop');
  // The two slots are filled by offers.js from client.decide(...).
  view().innerHTML = `
    <div class="home-top">
      <section class="hero" id="hero-slot" aria-label="Featured"></section>
      <aside class="promo" id="home-slot" aria-label="For you"></aside>
    </div>
    <ul class="grid" aria-label="Products">
      ${PRODUCTS.map((p, i) => `
        <li class="card">
          <a href="#/product/${p.id}" data-product="${p.id}" class="card-link">
            <div class="card-pic">${picture(p)}</div>
            <div class="card-body">
              <span class="card-cat">${esc(p.category)}</span>
              <span class="card-name">${esc(p.name)}</span>
              <span class="card-price">${money(p.price)}</span>
            </div>
          </a>
        </li>`).join('')}
    </ul>`;
  page('Product List', { route: 'list' });
  demo.offers?.renderHome();
  track('Product List Viewed', {
    list_id: 'all-products',
    category: 'All',
    products: PRODUCTS.map((p, i) => ({
      product_id: p.id, sku: p.sku, name: p.name, price: amount(p.price), category: p.category, position: i + 1,
    })),
  });
}

function renderProduct(id) {
  const p = product(id);
  if (!p) return renderNotFound();
  setTitle(p.name);
  const position = PRODUCTS.indexOf(p) + 1;
  view().innerHTML = `
    <nav class="crumbs"><a href="#/">Shop</a> <span>/</span> ${esc(p.category)}</nav>
    <article class="product">
      <div class="product-pic">${picture(p)}</div>
      <div class="product-info">
        <p class="eyebrow">${esc(p.category)} · ${esc(p.sku)}</p>
        <h1>${esc(p.name)}</h1>
        <p class="product-price">${money(p.price)}</p>
        <p class="lede">${esc(p.blurb)}</p>
        <form id="add-form" class="add-form">
          ${p.sizes ? `
          <fieldset class="sizes">
            <legend>Size</legend>
            ${p.sizes.map((s, i) => `
              <label class="size"><input type="radio" name="size" value="${esc(s)}" ${i === Math.floor(p.sizes.length / 2) ? 'checked' : ''}><span>${esc(s)}</span></label>`).join('')}
          </fieldset>` : ''}
          <div class="qty-row">
            <label for="qty">Quantity</label>
            <input id="qty" name="quantity" type="number" min="1" max="9" value="1" inputmode="numeric">
          </div>
          <button id="add-to-cart" type="submit" class="btn btn-primary">Add to cart</button>
        </form>
      </div>
    </article>`;
  page('Product', { route: 'product', product_id: p.id });
  track('Product Viewed', productProps(p, { quantity: 1, position, value: amount(p.price) }));

  $('#add-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const variant = form.get('size') || null;
    const quantity = Math.min(9, Math.max(1, parseInt(form.get('quantity'), 10) || 1));
    const key = lineKey(p.id, variant);
    const line = cart.lines.find((l) => lineKey(l.productId, l.variant) === key);
    if (line) line.quantity = Math.min(99, line.quantity + quantity);
    else cart.lines.push({ productId: p.id, variant, quantity });
    saveCart();
    track('Product Added', productProps(p, { cart_id: cart.id, variant: variant || undefined, quantity, position }));
    toast(`Added <strong>${esc(p.name)}</strong>${variant ? ` (${esc(variant)})` : ''} · <a href="#/cart">View cart</a>`);
  });
}

function summaryRows(lines) {
  const t = totals(lines);
  return `
    <dl class="totals">
      <dt>Subtotal</dt><dd>${money(t.subtotal)}</dd>
      <dt>Shipping</dt><dd>${t.shipping ? money(t.shipping) : 'Free'}</dd>
      <dt>Tax (8%)</dt><dd>${money(t.tax)}</dd>
      <dt class="grand">Total</dt><dd class="grand">${money(t.total)}</dd>
    </dl>`;
}

function lineRows(lines, editable) {
  return lines.map((l, i) => {
    const p = product(l.productId);
    return `
      <li class="line">
        <a class="line-pic" href="#/product/${p.id}">${picture(p)}</a>
        <div class="line-info">
          <a href="#/product/${p.id}" class="line-name">${esc(p.name)}</a>
          <span class="muted">${l.variant ? `Size ${esc(l.variant)} · ` : ''}${editable ? money(p.price) : `${l.quantity} × ${money(p.price)}`}</span>
        </div>
        ${editable ? `
        <div class="line-qty">
          <button type="button" class="icon-btn" data-dec="${i}" aria-label="One less">−</button>
          <span>${l.quantity}</span>
          <button type="button" class="icon-btn" data-inc="${i}" aria-label="One more">+</button>
        </div>` : ''}
        <span class="line-total">${money(p.price * l.quantity)}</span>
      </li>`;
  }).join('');
}

function renderCart() {
  setTitle('Cart');
  const draw = () => {
    if (cart.lines.length === 0) {
      view().innerHTML = `
        <h1>Your cart</h1>
        <div class="empty-state"><p>Your cart is empty.</p><a class="btn" href="#/">Browse the shop</a></div>`;
      return;
    }
    view().innerHTML = `
      <h1>Your cart</h1>
      <div class="cart">
        <ul class="lines">${lineRows(cart.lines, true)}</ul>
        <aside class="summary">
          ${summaryRows(cart.lines)}
          <a id="checkout-btn" class="btn btn-primary btn-block" href="#/checkout">Checkout</a>
          <a class="btn btn-ghost btn-block" href="#/">Continue shopping</a>
        </aside>
      </div>`;
  };
  draw();
  view().onclick = (e) => {
    const btn = e.target.closest('[data-inc],[data-dec]');
    if (!btn) return;
    const i = Number(btn.dataset.inc ?? btn.dataset.dec);
    const line = cart.lines[i];
    if (!line) return;
    const p = product(line.productId);
    if (btn.dataset.inc !== undefined) {
      line.quantity = Math.min(99, line.quantity + 1);
      track('Product Added', productProps(p, { cart_id: cart.id, variant: line.variant || undefined, quantity: 1 }));
    } else {
      line.quantity -= 1;
      if (line.quantity <= 0) cart.lines.splice(i, 1);
      track('Product Removed', productProps(p, { cart_id: cart.id, variant: line.variant || undefined, quantity: 1 }));
    }
    saveCart();
    draw();
  };
  page('Cart', { route: 'cart' });
  track('Cart Viewed', { cart_id: cart.id, products: cart.lines.map((l, i) => lineProps(l, i + 1)) });
}

function renderCheckout() {
  setTitle('Checkout');
  if (cart.lines.length === 0) {
    view().innerHTML = `
      <h1>Checkout</h1>
      <div class="empty-state"><p>There is nothing to check out.</p><a class="btn" href="#/">Browse the shop</a></div>`;
    page('Checkout', { route: 'checkout', empty: true });
    return;
  }
  // One order id per checkout: Checkout Started and Order Completed share it.
  let checkout = read(sessionStorage, KEY.checkout, null);
  if (!checkout || checkout.cartId !== cart.id) {
    checkout = { orderId: randomId('TL-'), checkoutId: randomId('K-'), cartId: cart.id };
    write(sessionStorage, KEY.checkout, checkout);
  }
  const who = demo.client?.getIdentity();
  const email = typeof who?.traits?.email === 'string' ? who.traits.email : '';
  view().innerHTML = `
    <h1>Checkout</h1>
    <div class="cart">
      <form id="checkout-form" class="checkout-form">
        <fieldset>
          <legend>Contact</legend>
          <label>Email <input name="email" type="email" autocomplete="email" value="${esc(email)}" placeholder="you@example.com"></label>
        </fieldset>
        <fieldset>
          <legend>Shipping address</legend>
          <label>Full name <input name="name" autocomplete="name" value="Ada Lovelace"></label>
          <label>Street <input name="street" autocomplete="street-address" value="12 St James's Square"></label>
          <div class="row">
            <label>City <input name="city" autocomplete="address-level2" value="London"></label>
            <label>Postcode <input name="postcode" autocomplete="postal-code" value="SW1Y 4JH"></label>
          </div>
        </fieldset>
        <fieldset>
          <legend>Payment</legend>
          <p class="muted">Demo store: no card needed, nothing is charged.</p>
        </fieldset>
        <button id="place-order" type="submit" class="btn btn-primary btn-block">Place order · ${money(totals(cart.lines).total)}</button>
      </form>
      <aside class="summary">
        <p class="muted">Order ${esc(checkout.orderId)}</p>
        <ul class="lines compact">${lineRows(cart.lines, false)}</ul>
        ${summaryRows(cart.lines)}
      </aside>
    </div>`;
  const orderProps = () => {
    const t = totals(cart.lines);
    return {
      checkout_id: checkout.checkoutId,
      order_id: checkout.orderId,
      affiliation: 'Threadline Outfitters (web demo)',
      value: amount(t.subtotal),
      revenue: amount(t.subtotal),
      subtotal: amount(t.subtotal),
      shipping: amount(t.shipping),
      tax: amount(t.tax),
      total: amount(t.total),
      currency: CURRENCY,
      products: cart.lines.map((l, i) => lineProps(l, i + 1)),
    };
  };
  page('Checkout', { route: 'checkout' });
  track('Checkout Started', orderProps());

  $('#checkout-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const props = orderProps();
    track('Order Completed', props);
    const orders = read(sessionStorage, KEY.orders, {});
    orders[checkout.orderId] = { lines: cart.lines, total: props.total, at: Date.now() };
    write(sessionStorage, KEY.orders, orders);
    sessionStorage.removeItem(KEY.checkout);
    cart = { id: randomId('C-'), lines: [] };
    saveCart();
    location.hash = `#/order/${checkout.orderId}`;
  });
}

function renderOrder(orderId) {
  const order = read(sessionStorage, KEY.orders, {})[orderId];
  if (!order) return renderNotFound();
  setTitle('Thank you');
  view().innerHTML = `
    <div class="thanks">
      <svg viewBox="0 0 48 48" class="thanks-mark" aria-hidden="true"><circle cx="24" cy="24" r="22" fill="currentColor"/><path d="M14 25l7 7 13-15" fill="none" stroke="#fff" stroke-width="4" stroke-linecap="round" stroke-linejoin="round"/></svg>
      <h1>Thank you for your order</h1>
      <p class="lede">Order <strong id="order-id">${esc(orderId)}</strong> · ${money(Math.round(order.total * 100))}.
        The <code>Order Completed</code> event carries its id, revenue, currency and products.</p>
      <ul class="lines compact">${lineRows(order.lines.filter((l) => product(l.productId)), false)}</ul>
      <a class="btn" href="#/">Keep shopping</a>
    </div>`;
  page('Order Confirmation', { route: 'order', order_id: orderId });
}

function renderSignIn() {
  setTitle('Sign in');
  const who = demo.client?.getIdentity();
  view().innerHTML = `
    <div class="signin">
      <h1>${who?.userId ? 'Switch account' : 'Sign in'}</h1>
      <p class="lede">Signing in calls <code>identify(userId, { email }, { ids: { email }, userToken })</code>: later events carry
        the user id next to this browser's anonymous id, and the shop learns what this person did on her other devices.</p>
      ${who?.userId ? `<p class="muted">Signed in as <strong>${esc(who.userId)}</strong>.</p>` : ''}
      <form id="signin-form" class="signin-form">
        <label>User id <input id="signin-user" name="userId" required autocomplete="username" value="user-${Math.floor(1000 + Math.random() * 9000)}"></label>
        <label>Email <input id="signin-email" name="email" type="email" required autocomplete="email" value="ada@example.com"></label>
        <button id="signin-submit" type="submit" class="btn btn-primary btn-block">Sign in</button>
      </form>
    </div>`;
  page('Sign In', { route: 'signin' });
  $('#signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const userId = String(form.get('userId') || '').trim();
    const email = String(form.get('email') || '').trim();
    if (!userId) return;
    const userToken = await demoToken(userId);
    identify(userId, email ? { email } : undefined, email ? { email } : undefined, userToken);
    updateAccount();
    toast(`Signed in as <strong>${esc(userId)}</strong>`);
    location.hash = sessionStorage.getItem('threadline-demo.back') || '#/';
  });
}

function renderNotFound() {
  setTitle('Not found');
  view().innerHTML = `<div class="empty-state"><h1>Not found</h1><p>That page does not exist.</p><a class="btn" href="#/">Back to the shop</a></div>`;
  page('Not Found', { route: 'not-found' });
}

function updateAccount() {
  const who = demo.client?.getIdentity();
  const link = $('#account-link');
  link.textContent = who?.userId ? `Hi, ${who.userId}` : 'Sign in';
}

// --- routing -----------------------------------------------------------------

function route() {
  const [name = '', arg = ''] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (name !== 'signin') sessionStorage.setItem('threadline-demo.back', location.hash || '#/');
  view().onclick = null;
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === (name || 'home'));
  }
  switch (name) {
    case '': renderList(); break;
    case 'product': renderProduct(arg); break;
    case 'cart': renderCart(); break;
    case 'checkout': renderCheckout(); break;
    case 'order': renderOrder(arg); break;
    case 'signin': renderSignIn(); break;
    default: renderNotFound();
  }
  view().focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

// --- start -------------------------------------------------------------------

function setupPanelToggle() {
  const panel = $('#panel');
  const btn = $('#panel-toggle');
  const apply = (open) => {
    document.body.classList.toggle('panel-closed', !open);
    btn.setAttribute('aria-expanded', String(open));
  };
  apply(read(localStorage, KEY.panel, true));
  btn.addEventListener('click', () => {
    const open = document.body.classList.contains('panel-closed');
    apply(open);
    write(localStorage, KEY.panel, open);
  });
  return panel;
}

async function main() {
  saveCart();
  setupPanelToggle();
  let error = null;
  try {
    await demo.ready;
  } catch (e) {
    error = e;
    console.error('threadline: the SDK did not start', e);
  }
  updateAccount();
  if (demo.client) {
    demo.offers = startOffers({ demo, record });
    // The first render waits a little for the rules (cached from an earlier
    // visit they are there at once); if they are late the slots show the
    // defaults and are redrawn when the rules arrive.
    await demo.offers.ready(RULES_WAIT_MS);
    demo.consent = startConsent({
      client: demo.client,
      esc,
      onChoice: () => {
        // Personalisation and the A/B test depend on consent: decide again.
        demo.offers.refresh();
        demo.panel?.refresh();
      },
    });
  }
  demo.panel = startPanel({ demo, error, esc });
  window.addEventListener('hashchange', route);
  route();
}

main();
