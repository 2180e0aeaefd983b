// Snowplow browser tracker (@snowplow/browser-tracker), its UMD build
// (global `snowplowBrowserTracking`); the standalone sp.js tag
// (@snowplow/javascript-tracker) is not in this registry. Collector = the
// sink (POST /com.snowplowanalytics.snowplow/tp2, defaults: one event per
// request, localStorage queue). Events are self-describing events with the
// properties as data; flush = flushBuffer().
import { join } from 'node:path';
import { pkg } from '../lib/pkg.mjs';

const { dir: PKG, version } = pkg('@snowplow/browser-tracker');

export default {
  name: 'snowplow',
  label: 'Snowplow browser-tracker',
  package: '@snowplow/browser-tracker',
  version,
  bundle: 'dist/index.umd.min.js (UMD; sp.js is not on this registry)',
  static: { '/sdk/snowplow/index.js': join(PKG, 'dist', 'index.umd.min.js') },
  settings: 'none (no remote config)',
  async setup(env) {
    await env.load(`${env.origin}/sdk/snowplow/index.js`);
    const sp = window.snowplowBrowserTracking;
    sp.newTracker('sp1', env.origin, { appId: 'bench', eventMethod: 'post' });
    return {
      track: (name, props) => {
        sp.trackSelfDescribingEvent({
          event: { schema: 'iglu:com.northwind/product_viewed/jsonschema/1-0-0', data: props },
        });
      },
      flush: () => sp.flushBuffer(),
    };
  },
};
