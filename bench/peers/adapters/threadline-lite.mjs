// Threadline's analytics-only build, `@threadline/web/lite` (npm/dist/lite:
// the core without on-device decisions, built by npm/scripts/build-lite.sh):
// the like-for-like build against analytics-only peers. Same settings as the
// full build's adapter; no decision phase (it has no decisions).
import { join } from 'node:path';
import full from './threadline.mjs';
import { ROOT } from '../../../tests/lib/collector.mjs';

export default {
  ...full,
  name: 'threadline-lite',
  label: 'Threadline lite (ours, analytics only)',
  variant: 'lite',
  bundle: 'npm/dist/lite/index.js + sdk_wasm.js + sdk_wasm_bg.wasm (ES module, built by npm/scripts/build-lite.sh)',
  static: { '/sdk/threadline-lite/': join(ROOT, 'npm', 'dist', 'lite') },
  async setup(env) {
    const sdk = await env.import(`${env.origin}/sdk/threadline-lite/index.js`);
    const client = await sdk.createClient({ endpoint: env.origin, writeKey: env.writeKey, consent: { default: 'granted' } });
    return { track: (name, props) => client.track(name, props), flush: () => client.flush() };
  },
};
