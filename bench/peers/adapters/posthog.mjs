// PostHog (posthog-js), `dist/array.js`: the file PostHog's snippet loads
// from its CDN (global `posthog`). api_host is the sink, which answers
// `/flags` and the remote config with empty settings and serves the lazily
// loaded extensions (`/static/*.js`) from the package's dist, as PostHog's
// assets host would. Otherwise defaults (autocapture on, pageview on init),
// except opt_out_useragent_filter (automation looks like a bot to PostHog).
import { join } from 'node:path';
import { pkg } from '../lib/pkg.mjs';

const { dir: PKG, version } = pkg('posthog-js');
const DIST = join(PKG, 'dist');

export default {
  name: 'posthog',
  label: 'PostHog posthog-js',
  package: 'posthog-js',
  version,
  bundle: 'dist/array.js (the CDN build the snippet loads) + any dist/*.js extension it loads',
  static: { '/sdk/posthog/': DIST, [`/static/${version}/`]: DIST, '/static/': DIST },
  settings: 'flags and remote config answered by the sink (no flags, no session recording)',
  respond(method, url) {
    if (url.pathname.startsWith('/flags') || url.pathname.startsWith('/decide')) {
      return {
        body: JSON.stringify({
          featureFlags: {},
          flags: {},
          featureFlagPayloads: {},
          errorsWhileComputingFlags: false,
          supportedCompression: ['gzip', 'gzip-js'],
        }),
      };
    }
    // Remote config as PostHog's servers answer a project with no extras
    // enabled: it says the server takes gzip, so PostHog compresses batches.
    const config = { supportedCompression: ['gzip', 'gzip-js'], autocaptureExceptions: false, sessionRecording: false, heatmaps: false, surveys: false };
    if (url.pathname.startsWith('/array/') && url.pathname.endsWith('.js')) {
      return { type: 'text/javascript', body: `(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};window._POSTHOG_REMOTE_CONFIG[${JSON.stringify(url.pathname.split('/')[2])}]={config:${JSON.stringify(config)},siteApps:[]}})();` };
    }
    if (url.pathname.startsWith('/array/')) return { body: JSON.stringify(config) };
    return { body: JSON.stringify({ status: 1 }) };
  },
  async setup(env) {
    await env.load(`${env.origin}/sdk/posthog/array.js`);
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('posthog loaded never called')), 15000);
      window.posthog.init('phc_benchtoken000000000000000000000000000000', {
        api_host: env.origin,
        // Under browser automation (navigator.webdriver) PostHog drops every
        // event as a bot's; this is its documented switch for tests.
        opt_out_useragent_filter: true,
        loaded: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
    const ph = window.posthog;
    return {
      track: (name, props) => {
        ph.capture(name, props);
      },
    };
  },
};
