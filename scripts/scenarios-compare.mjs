#!/usr/bin/env node
// Compares the scenario transcripts the runners wrote under
// target/scenarios/<runner>/<name>.txt (format: tests/scenarios/README.md,
// "Transcripts"): every runner must have one per scenario file, and each must
// equal the native runner's line for line. Passing expectations on every
// platform is not enough on its own: this proves the same uploads (byte for
// byte, by hash), notices and storage operations, in the same order.
//   node scripts/scenarios-compare.mjs native wasm kotlin
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = process.env.CARGO_TARGET_DIR || join(root, 'target');
const runners = process.argv.slice(2);
if (runners.length < 2) {
  console.error('usage: scenarios-compare.mjs <reference runner> <runner>...');
  process.exit(2);
}
const scenarios = readdirSync(join(root, 'tests', 'scenarios'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length))
  .sort();

const read = (runner, name) => {
  const p = join(target, 'scenarios', runner, `${name}.txt`);
  return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter((l) => l !== '') : null;
};

let failures = 0;
const [reference, ...others] = runners;
for (const name of scenarios) {
  const want = read(reference, name);
  if (!want) {
    console.error(`${name}: no ${reference} transcript`);
    failures++;
    continue;
  }
  if (want.length === 0 || !want.some((l) => l.endsWith(' expect ok'))) {
    console.error(`${name}: the ${reference} transcript records no passed expectation`);
    failures++;
  }
  for (const runner of others) {
    const got = read(runner, name);
    if (!got) {
      console.error(`${name}: no ${runner} transcript`);
      failures++;
      continue;
    }
    const n = Math.max(want.length, got.length);
    for (let i = 0; i < n; i++) {
      if (want[i] !== got[i]) {
        console.error(
          `${name}: ${runner} differs from ${reference} at line ${i + 1}:\n` +
            `    ${reference}: ${want[i] ?? '(end)'}\n    ${runner}: ${got[i] ?? '(end)'}`,
        );
        failures++;
        break;
      }
    }
  }
}
if (failures) {
  console.error(`scenarios-compare: ${failures} difference(s)`);
  process.exit(1);
}
console.log(`scenarios-compare: ${scenarios.length} scenarios identical on ${runners.join(', ')}`);
