// Amplitude Browser SDK 2 (@amplitude/analytics-browser), the CDN script
// `lib/scripts/amplitude-min.js` (global `amplitude`), serverUrl = the sink
// (`/2/httpapi`, answered as Amplitude answers), remote config fetch off
// (it would go to Amplitude's servers). Other options default.
// Pinned to 2.47.0: 2.48.x depends on plugin versions missing from the registry.
import { join } from 'node:path';
import { pkg } from '../lib/pkg.mjs';

const { dir: PKG, version } = pkg('@amplitude/analytics-browser');

export default {
  name: 'amplitude',
  label: 'Amplitude analytics-browser',
  package: '@amplitude/analytics-browser',
  version,
  bundle: 'lib/scripts/amplitude-min.js (the CDN script)',
  static: { '/sdk/amplitude/index.js': join(PKG, 'lib', 'scripts', 'amplitude-min.js') },
  settings: 'fetchRemoteConfig: false',
  respond(method, url, { body }) {
    if (method === 'POST' && url.pathname === '/2/httpapi') {
      let n = 0;
      try {
        n = JSON.parse(body.toString('utf8')).events.length;
      } catch {}
      return { body: JSON.stringify({ code: 200, events_ingested: n, payload_size_bytes: body.length, server_upload_time: Date.now() }) };
    }
    return undefined;
  },
  async setup(env) {
    await env.load(`${env.origin}/sdk/amplitude/index.js`);
    const amp = window.amplitude;
    await amp.init('benchapikey0000000000000000000', undefined, {
      serverUrl: `${env.origin}/2/httpapi`,
      fetchRemoteConfig: false,
    }).promise;
    return {
      track: (name, props) => {
        amp.track(name, props);
      },
      flush: () => amp.flush().promise,
    };
  },
};
