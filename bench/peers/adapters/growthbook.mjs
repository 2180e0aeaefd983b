// GrowthBook (@growthbook/growthbook), the UMD browser bundle
// dist/bundles/index.min.js (global `growthbook`). Decisions only (it has no
// event tracking): features passed inline, so nothing is fetched. The
// workload: N features, each with a targeting rule (three conditions) and an
// experiment rule (two variations, hashed on the user id); one "decision"
// evaluates every feature for one user, as picking offers across N placements.
import { join } from 'node:path';
import { pkg } from '../lib/pkg.mjs';

const { dir: PKG, version } = pkg('@growthbook/growthbook');

export default {
  name: 'growthbook',
  label: 'GrowthBook (decisions)',
  package: '@growthbook/growthbook',
  kind: 'decide',
  version,
  bundle: 'dist/bundles/index.min.js (UMD)',
  static: { '/sdk/growthbook/index.js': join(PKG, 'dist', 'bundles', 'index.min.js') },
  settings: 'features inline (no API host)',
  async setup(env) {
    await env.load(`${env.origin}/sdk/growthbook/index.js`);
    const GB = window.growthbook.GrowthBook;
    const make = (n) => {
      const features = {};
      for (let i = 0; i < n; i++) {
        features[`offer-${i}`] = {
          defaultValue: 'default',
          rules: [
            {
              condition: {
                country: { $in: ['DE', 'AT', 'CH'] },
                'cart.total': { $gt: 50 + (i % 50) },
                tier: { $in: i % 3 === 0 ? ['gold'] : ['gold', 'silver'] },
              },
              force: `targeted-${i}`,
            },
            {
              key: `exp-${i}`,
              variations: [`control-${i}`, `variant-${i}`],
              weights: [0.5, 0.5],
              coverage: 1,
              hashAttribute: 'id',
            },
          ],
        };
      }
      return features;
    };
    return {
      /** µs per decision (every feature evaluated once), `passes` timed after `warm`. */
      decide: ({ features = 200, passes = 500, warm = 50 }) => {
        const gb = new GB({
          attributes: { id: 'device-8f14e45f', country: 'DE', cart: { total: 80 }, tier: 'silver', visits: 5 },
          features: make(features),
          trackingCallback: () => {},
        });
        const keys = Object.keys(make(features));
        let sink = 0;
        const once = () => {
          for (let k = 0; k < keys.length; k++) if (gb.evalFeature(keys[k]).value !== 'default') sink++;
        };
        for (let i = 0; i < warm; i++) once();
        const perPass = [];
        for (let i = 0; i < passes; i++) {
          const t0 = performance.now();
          once();
          perPass.push((performance.now() - t0) * 1000);
        }
        const sample = keys.slice(0, 4).map((k) => [k, gb.evalFeature(k).value, gb.evalFeature(k).source]);
        return { perPass, sample, nonDefault: sink };
      },
    };
  },
};
