// Segment Analytics.js 2.0 (@segment/analytics-next), its UMD browser build
// (global `AnalyticsNext`), pointed at the sink: `cdnURL` is the sink, which
// serves the project settings (`/v1/projects/<key>/settings`) with the
// Segment.io destination's apiHost on the sink, and the lazily loaded chunks
// (`/analytics-next/bundles/*`) from the package's dist/umd. Default delivery
// strategy (one request per event, to `/v1/t`).
import { join } from 'node:path';
import { pkg } from '../lib/pkg.mjs';

const { dir: PKG, version } = pkg('@segment/analytics-next');
const UMD = join(PKG, 'dist', 'umd');

export default {
  name: 'segment',
  label: 'Segment analytics-next',
  package: '@segment/analytics-next',
  version,
  bundle: 'dist/umd/index.js (UMD) + the chunks it loads from dist/umd',
  static: { '/sdk/segment/': UMD, '/analytics-next/bundles/': UMD },
  settings: 'project settings served by the sink through cdnURL; metrics sampleRate 0',
  respond(method, url, { origin }) {
    if (method === 'GET' && /^\/v1\/projects\/[^/]+\/settings$/.test(url.pathname)) {
      const host = origin.replace(/^https?:\/\//, '');
      return {
        body: JSON.stringify({
          integrations: { 'Segment.io': { apiKey: 'benchwritekey0000000000000000000', apiHost: `${host}/v1`, protocol: 'http' } },
          plan: { track: { __default: { enabled: true, integrations: {} } } },
          edgeFunction: {},
          analyticsNextEnabled: true,
          middlewareSettings: {},
          enabledMiddleware: {},
          metrics: { sampleRate: 0 },
          legacyVideoPluginsEnabled: false,
          remotePlugins: [],
        }),
      };
    }
    return undefined;
  },
  async setup(env) {
    await env.load(`${env.origin}/sdk/segment/index.js`);
    const [analytics] = await window.AnalyticsNext.AnalyticsBrowser.load({
      writeKey: env.writeKey,
      cdnURL: env.origin,
    });
    return {
      track: (name, props) => {
        analytics.track(name, props);
      },
    };
  },
};
