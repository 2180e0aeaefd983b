// Mixpanel (mixpanel-browser): the official snippet (dist/mixpanel-jslib-snippet.min.js)
// loading the CDN build dist/mixpanel.min.js through MIXPANEL_CUSTOM_LIB_URL,
// api_host = the sink (`/track`, answered as Mixpanel answers with verbose=1).
// Defaults (batched requests, 5 s flush interval). Mixpanel has no public
// flush(): the benchmark waits for its timer.
import { join } from 'node:path';
import { pkg } from '../lib/pkg.mjs';

const { dir: PKG, version } = pkg('mixpanel-browser');

export default {
  name: 'mixpanel',
  label: 'Mixpanel mixpanel-browser',
  package: 'mixpanel-browser',
  version,
  bundle: 'dist/mixpanel-jslib-snippet.min.js + dist/mixpanel.min.js (the CDN build)',
  static: {
    '/sdk/mixpanel/snippet.js': join(PKG, 'dist', 'mixpanel-jslib-snippet.min.js'),
    '/sdk/mixpanel/mixpanel.min.js': join(PKG, 'dist', 'mixpanel.min.js'),
  },
  settings: 'none fetched by default',
  respond() {
    return { body: JSON.stringify({ status: 1, error: null }) };
  },
  async setup(env) {
    window.MIXPANEL_CUSTOM_LIB_URL = `${env.origin}/sdk/mixpanel/mixpanel.min.js`;
    await env.load(`${env.origin}/sdk/mixpanel/snippet.js`);
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('mixpanel loaded never called')), 15000);
      window.mixpanel.init('benchtoken0000000000000000000000', {
        api_host: env.origin,
        loaded: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
    const mp = window.mixpanel;
    return {
      track: (name, props) => {
        mp.track(name, props);
      },
    };
  },
};
