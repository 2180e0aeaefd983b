// The demo's consent banner and its "what is stored" view.
//
// The shop runs consent-first (`consent: { default: 'pending' }`): until the
// visitor answers, Threadline holds events in memory, creates no id, writes
// nothing and sends nothing. The banner offers accept all, reject all and a
// per-purpose choice; "Privacy settings" in the footer reopens it. The
// visitor's choice is remembered by the SDK itself (its device cookie), so
// the banner only shows while `analytics` is still pending.

const PURPOSES = [
  ['analytics', 'Analytics', 'Measure visits and purchases. Without it nothing is stored or sent.'],
  ['personalization', 'Personalisation', 'Choose offers on this device from what you viewed.'],
  ['advertising', 'Advertising', 'Use your visits for advertising elsewhere.'],
  ['sale', 'Sale or sharing', 'Share data with partners (CCPA/CPRA "sale").'],
];

export const STORAGE_PREFIX = 'threadline.';

/** The SDK's cookie and storage keys, exactly as the browser holds them. */
export function storedItems() {
  const items = [];
  for (const part of document.cookie.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name && name.startsWith('tl_')) items.push({ where: 'cookie', name, value: rest.join('=') });
  }
  try {
    for (let i = 0; i < localStorage.length; i++) {
      const name = localStorage.key(i);
      if (name && name.startsWith(STORAGE_PREFIX)) {
        items.push({ where: 'localStorage', name, value: localStorage.getItem(name) || '' });
      }
    }
  } catch {
    // storage disabled: nothing to show
  }
  return items.sort((a, b) => a.where.localeCompare(b.where) || a.name.localeCompare(b.name));
}

/**
 * Shows the banner when needed and wires "Privacy settings".
 * @param {{ client: any, esc: (s: unknown) => string, onChoice?: (consent: object) => void }} opts
 */
export function startConsent({ client, esc, onChoice }) {
  const banner = document.createElement('section');
  banner.id = 'consent-banner';
  banner.className = 'consent';
  banner.setAttribute('role', 'dialog');
  banner.setAttribute('aria-label', 'Privacy choices');
  banner.hidden = true;
  document.body.append(banner);

  function render(customise) {
    const now = client.getConsent();
    const toggles = PURPOSES.map(
      ([key, label, text]) => `
        <label class="consent-purpose">
          <input type="checkbox" name="${key}" ${now[key] === 'granted' ? 'checked' : ''}
            ${key === 'advertising' || key === 'sale' ? (now.gpc ? 'disabled' : '') : ''}>
          <span><strong>${esc(label)}</strong> ${esc(text)}</span>
        </label>`,
    ).join('');
    banner.innerHTML = `
      <div class="consent-body">
        <h2>Your privacy, your choice</h2>
        <p>This shop uses <strong>Threadline</strong> to record what you do here. Until you choose,
          nothing is stored on your device and nothing is sent.
          ${now.gpc ? '<br><em>Your browser sends Global Privacy Control: advertising and sale stay off.</em>' : ''}</p>
        ${customise ? `<form id="consent-form" class="consent-form">${toggles}</form>` : ''}
        <div class="consent-actions">
          ${customise
            ? '<button type="button" class="btn btn-primary" data-consent="save">Save choices</button>'
            : '<button type="button" class="btn btn-ghost" data-consent="customise">Customise</button>'}
          <button type="button" class="btn btn-ghost" data-consent="reject">Reject all</button>
          <button type="button" class="btn btn-primary" data-consent="accept">Accept all</button>
        </div>
      </div>`;
  }

  function choose(consent) {
    try {
      const now = client.setConsent(consent);
      banner.hidden = true;
      onChoice?.(now);
    } catch (e) {
      console.error('threadline: setConsent failed', e);
    }
  }

  banner.addEventListener('click', (ev) => {
    const action = ev.target.closest?.('[data-consent]')?.dataset.consent;
    const all = (choice) => Object.fromEntries(PURPOSES.map(([k]) => [k, choice]));
    if (action === 'accept') choose(all('granted'));
    else if (action === 'reject') choose(all('denied'));
    else if (action === 'customise') render(true);
    else if (action === 'save') {
      const form = banner.querySelector('#consent-form');
      choose(Object.fromEntries(PURPOSES.map(([k]) => [k, form.elements[k].checked ? 'granted' : 'denied'])));
    }
  });

  const open = (customise = false) => {
    render(customise);
    banner.hidden = false;
  };
  document.getElementById('privacy-link')?.addEventListener('click', (ev) => {
    ev.preventDefault();
    open(true);
  });
  if (client.getConsent().analytics === 'pending') open(false);
  return { open };
}
