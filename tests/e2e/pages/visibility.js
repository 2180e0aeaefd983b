// Init script (page.addInitScript): headless Chromium never hides a page,
// so this lets a test switch `document.visibilityState` and fire
// `visibilitychange` the way a tab switch, a minimised window or a phone
// going to the home screen does. `window.__setVisibility('hidden'|'visible')`.
(() => {
  let state = 'visible';
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => state });
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => state === 'hidden' });
  window.__setVisibility = (s) => {
    state = s;
    document.dispatchEvent(new Event('visibilitychange'));
  };
})();
