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
    /*
     * The GrowthBook workload in our terms (see adapters/growthbook.mjs): N
     * placements, each with one targeted offer (the same three conditions, on
     * the context the host passes) and an experiment with two 50/50 variants
     * (the second overrides the content); one "decision" is a `decideMany` over
     * every placement for one person. Runs in its own client with the artifact
     * inline, nothing fetched.
     */
    const decideBench = async (sdk, env, { features = 200, passes = 500, warm = 50 }) => {
      const placements = [];
      const offers = [];
      const experiments = [];
      for (let i = 0; i < features; i++) {
        const id = `offer-${i}`;
        placements.push({ id, default: { id: `${id}-default`, content: 'default' } });
        offers.push({
          id: `targeted-${i}`, placement: id, priority: 1, content: `targeted-${i}`,
          condition: { and: [
            { in: [{ var: 'country' }, ['DE', 'AT', 'CH']] },
            { '>': [{ var: 'cart.total' }, 50 + (i % 50)] },
            { in: [{ var: 'tier' }, i % 3 === 0 ? ['gold'] : ['gold', 'silver']] },
          ] },
        });
        experiments.push({
          id: `exp-${i}`, placement: id, traffic: 1, holdout: 0,
          variants: [{ id: `control-${i}`, weight: 50 }, { id: `variant-${i}`, weight: 50, content: `variant-${i}` }],
        });
      }
      const artifact = JSON.stringify({ version: 1, bucketing: 'murmur3_x86_32/v1', placements, offers, experiments });
      const client = await sdk.createClient(
        { endpoint: env.origin, writeKey: env.writeKey, consent: { default: 'granted' }, rules: {} },
        { rules: { artifact }, storagePrefix: 'tlbench' },
      );
      if (!(await client.ready(5000))) throw new Error('threadline: the inline artifact did not load');
      const context = { country: 'DE', cart: { total: 80 }, tier: 'silver', visits: 5 };
      const keys = placements.map((p) => p.id);
      let sink = 0;
      // One call for the page's placements, as a page with many slots would.
      const once = () => {
        const all = client.decideMany(keys, { context });
        for (let k = 0; k < keys.length; k++) {
          const d = all[keys[k]][0];
          if (d && !d.isDefault) sink++;
        }
      };
      for (let i = 0; i < warm; i++) once();
      const perPass = [];
      for (let i = 0; i < passes; i++) {
        const t0 = performance.now();
        once();
        perPass.push((performance.now() - t0) * 1000);
      }
      const sample = keys.slice(0, 4).map((k) => {
        const [d] = client.decide(k, { context });
        return [k, d.content, d.variantId ?? null];
      });
      return { perPass, sample, nonDefault: sink };
    };
    return {
      track: (name, props) => client.track(name, props),
      flush: () => client.flush(),
      decide: (opts) => decideBench(sdk, env, opts),
    };
  },
};

