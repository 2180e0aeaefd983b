// A site's entry module: the package is imported by its name and bundled by
// Vite, which emits the `.wasm` as an asset (from the package's
// `new URL('./sdk_wasm_bg.wasm', import.meta.url)`) and the JavaScript engine
// as a lazy chunk. `?endpoint=<collector>` points the client at a collector.
import { createClient } from '@threadline/web';

const endpoint = new URLSearchParams(location.search).get('endpoint') || location.origin;

window.clientReady = createClient({ endpoint, writeKey: 'demo-write-key', batch: { maxAgeMs: 200 } }).then((client) => {
  window.client = client;
  client.page('Vite Home');
  document.getElementById('buy').addEventListener('click', () => {
    client.track('Order Completed', { total: 42, currency: 'EUR' });
  });
  return client.engine;
});
