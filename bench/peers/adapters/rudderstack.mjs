// RudderStack JavaScript SDK v3 (@rudderstack/analytics-js), the npm
// package's "modern bundled" UMD build (plugins included, so nothing is
// fetched from Rudder's CDN), source config served by the sink (`configUrl`).
// Default queue (XHR queue, one request per event to `/v1/track`).
import { join } from 'node:path';
import { pkg } from '../lib/pkg.mjs';

const { dir: PKG, version } = pkg('@rudderstack/analytics-js');

export default {
  name: 'rudderstack',
  label: 'RudderStack analytics-js v3',
  package: '@rudderstack/analytics-js',
  version,
  bundle: 'dist/npm/modern/bundled/umd/index.js (UMD, plugins bundled)',
  static: { '/sdk/rudderstack/index.js': join(PKG, 'dist', 'npm', 'modern', 'bundled', 'umd', 'index.js') },
  settings: 'source config served by the sink through configUrl; stats collection off in it',
  respond(method, url) {
    if (method === 'GET' && url.pathname.startsWith('/sourceConfig')) {
      return {
        body: JSON.stringify({
          isHosted: true,
          source: {
            config: { statsCollection: { errors: { enabled: false }, metrics: { enabled: false } } },
            id: 'benchsource',
            name: 'bench',
            writeKey: 'benchwritekey0000000000000000000',
            enabled: true,
            workspaceId: 'benchworkspace',
            updatedAt: '2026-01-01T00:00:00.000Z',
            destinations: [],
          },
        }),
      };
    }
    return undefined;
  },
  async setup(env) {
    await env.load(`${env.origin}/sdk/rudderstack/index.js`);
    const ra = new window.rudderanalytics.RudderAnalytics();
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('rudderanalytics.ready never called')), 15000);
      ra.load(env.writeKey, env.origin, {
        configUrl: env.origin,
        destSDKBaseURL: `${env.origin}/rudder-dest`,
        pluginsSDKBaseURL: `${env.origin}/rudder-plugins`,
        onLoaded: () => {},
      });
      ra.ready(() => {
        clearTimeout(t);
        resolve();
      });
    });
    return {
      track: (name, props) => {
        ra.track(name, props);
      },
    };
  },
};
