// Init script (page.addInitScript) that records what the page does on the
// network without changing it: every fetch to /v1/batch (start time,
// navigator.onLine, outcome) in `window.__net.fetches` and, once answered,
// in sessionStorage `e2e.fetches`; every sendBeacon call in sessionStorage
// `e2e.beacons` (sessionStorage survives a reload).
(() => {
  const net = (window.__net = { fetches: [] });
  const remember = (key, rec) => {
    try {
      const v = JSON.parse(sessionStorage.getItem(key) || '[]');
      v.push(rec);
      sessionStorage.setItem(key, JSON.stringify(v));
    } catch {
      // storage trouble must not change what the page does
    }
  };
  const origFetch = window.fetch;
  window.fetch = function (input, init) {
    const url = String((input && input.url) || input);
    const p = origFetch.apply(this, arguments);
    if (url.includes('/v1/batch')) {
      const rec = { t: Date.now(), online: navigator.onLine, done: null };
      net.fetches.push(rec);
      p.then(
        (r) => { rec.done = Date.now(); rec.status = r.status; remember('e2e.fetches', rec); },
        (e) => { rec.done = Date.now(); rec.error = String(e); remember('e2e.fetches', rec); },
      );
    }
    return p;
  };
  const origBeacon = Navigator.prototype.sendBeacon;
  Navigator.prototype.sendBeacon = function (url, data) {
    const ok = origBeacon.call(this, url, data);
    remember('e2e.beacons', { t: Date.now(), ok, bytes: data && data.size });
    return ok;
  };
})();
