// Amplitude Browser SDK 2 (@amplitude/analytics-browser), the CDN script
// `lib/scripts/amplitude-min.js` (global `amplitude`), serverUrl = the sink
// (`/2/httpapi`, answered as Amplitude answers), remote config fetch off
// (it would go to Amplitude's servers). Other options default.
// Pinned to 2.47.0: 2.48.x depends on plugin versions missing from the registry.
//
// flush(): first waits until Amplitude has delivered, on its own timers,
// every event it was given (the documented `track(...).promise`, which
// resolves once the event's request was answered; events go out in order, so
// the last one's promise covers the whole backlog), then calls `flush()`.
// Why not `flush()` at once: Amplitude's timeline hands tracked events to its
// destination one per setTimeout turn, so after the 11,000-event `track` loop
// (100 calls per turn) nearly all of them are still in the timeline. `flush()`
// then applies that whole backlog in one task, and for each event the
// destination re-saves its unsent queue to localStorage (`AMP_unsent_*`,
// capped at 1,000 events, ~1 MB of JSON per write): ~10,000 writes of ~1 MB
// without the task ever yielding. Measured here: 0-4 requests reached the
// sink, the renderer's resident memory grew ~110 MB/s to ~14 GB (most likely
// the pending localStorage writes, which cannot be released while the task
// runs) and the renderer was killed after ~135 s: "Target crashed", as in every
// round of the 2026-11-24 run. A page calling `flush()` after such a burst
// would crash the same way. Left to its timers, the same backlog was
// delivered in full (~135 events/s on this machine) with a JS heap under
// 120 MiB. Nothing is configured differently; the waiting is main-thread
// work and heap counted like any SDK's deferred work. Effect on the other
// phases: the wire phase's 1,000 events leave in the 1 s timer's batches
// (37 requests in one trial; 34 with flush() at once in the last full run);
// delivery, close and reload figures are as before.
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
  settings: 'fetchRemoteConfig: false; flush() waits for its own delivery of the backlog first',
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
    // The last track's result: its promise settles once Amplitude has sent
    // every event tracked before it (see the header).
    let last = null;
    // A guard, so that a backlog Amplitude never delivers fails the phase
    // with a reason instead of hanging the benchmark.
    const DRAIN_LIMIT_MS = 300000;
    return {
      track: (name, props) => {
        last = amp.track(name, props);
      },
      flush: async () => {
        const pending = last;
        last = null;
        if (pending) {
          let timer;
          const limit = new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`amplitude: backlog not delivered by its own timers within ${DRAIN_LIMIT_MS / 1000} s`)),
              DRAIN_LIMIT_MS,
            );
          });
          try {
            await Promise.race([pending.promise, limit]);
          } finally {
            clearTimeout(timer);
          }
        }
        await amp.flush().promise;
      },
    };
  },
};
