// The page of tests/e2e/csp.test.mjs, served with a Content Security Policy
// header. `#entry=index|inline|iife&endpoint=<collector>` picks the package entry
// (iife: the tag-manager script through the snippet's queue);
// the client lands in `window.client` (its promise in `window.clientReady`),
// every CSP violation the browser reports in `window.violations`.
window.violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI });
});
const params = new URLSearchParams(location.hash.slice(1));
const kind = params.get('entry');
const options = {
  endpoint: params.get('endpoint'),
  writeKey: 'demo-write-key',
  batch: { maxAgeMs: 200 },
  cookie: false,
};
if (kind === 'iife') {
  // The tag-manager script, queued as the snippet does it (a same-origin
  // script here: the policy forbids inline ones).
  window.clientReady = new Promise((resolve, reject) => {
    const tl = (window.threadline = window.threadline || function () { (tl.q = tl.q || []).push(arguments); });
    tl('init', options);
    tl((client) => {
      window.client = client;
      resolve(client.engine);
    });
    const s = document.createElement('script');
    s.async = true;
    s.src = '/npm/dist/threadline.js';
    s.onerror = () => reject(new Error('threadline.js did not load'));
    document.head.appendChild(s);
  });
} else {
  const entry = kind === 'inline' ? '/npm/dist/inline.js' : '/npm/dist/index.js';
  window.clientReady = import(entry).then(async (threadline) => {
    window.client = await threadline.createClient(options);
    return window.client.engine;
  });
}
window.clientReady.catch((e) => {
  window.loadError = String(e && e.stack ? e.stack : e);
});
