// The page of tests/e2e/csp.test.mjs, served with a Content Security Policy
// header. `#entry=index|inline&endpoint=<collector>` picks the package entry;
// the client lands in `window.client` (its promise in `window.clientReady`),
// every CSP violation the browser reports in `window.violations`.
window.violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI });
});
const params = new URLSearchParams(location.hash.slice(1));
const entry = params.get('entry') === 'inline' ? '/npm/dist/inline.js' : '/npm/dist/index.js';
window.clientReady = import(entry).then(async (threadline) => {
  window.client = await threadline.createClient({
    endpoint: params.get('endpoint'),
    writeKey: 'demo-write-key',
    batch: { maxAgeMs: 200 },
    cookie: false,
  });
  return window.client.engine;
});
window.clientReady.catch((e) => {
  window.loadError = String(e && e.stack ? e.stack : e);
});
