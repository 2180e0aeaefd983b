// Threadline: the npm package as a site loads it (npm/dist: the ES module,
// wasm-bindgen's glue and the .wasm, fetched beside the module). Defaults,
// analytics consent granted so events flow.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../../tests/lib/collector.mjs';

const DIST = join(ROOT, 'npm', 'dist');

export default {
  name: 'threadline',
  label: 'Threadline (ours)',
  ours: true,
  version: JSON.parse(readFileSync(join(ROOT, 'npm', 'package.json'), 'utf8')).version,
  bundle: 'npm/dist/index.js + sdk_wasm.js + sdk_wasm_bg.wasm (ES module, built by npm/scripts/build.sh)',
  static: { '/sdk/threadline/': DIST },
  settings: 'none needed',
  async setup(env) {
    const sdk = await env.import(`${env.origin}/sdk/threadline/index.js`);
    const client = await sdk.createClient({
      endpoint: env.origin,
      writeKey: env.writeKey,
      consent: { default: 'granted' },
    });
    return {
      track: (name, props) => client.track(name, props),
      flush: () => client.flush(),
    };
  },
};
