#!/usr/bin/env node
// Enforces web-size-budget.json: for each way a page loads the SDK (the
// default entry with its .wasm; the inline entry; the wasm2js engine a
// strict CSP gets), the sum of the brotli (quality 11) sizes of the files
// it loads from npm/dist must stay within the budget. Prints current vs
// budget for each, exits 1 when one is over, 2 when a file is missing.
//
//   node scripts/check-web-size.mjs            check
//   node scripts/check-web-size.mjs --measure  print the measurement as JSON
import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { compressedSizes } from '../bench/lib/measure.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'npm', 'dist');
const budget = JSON.parse(readFileSync(join(ROOT, 'web-size-budget.json'), 'utf8'));

const missing = new Set();
const sizes = new Map();
function brotli(file) {
  if (!sizes.has(file)) {
    const path = join(DIST, file);
    if (!existsSync(path)) {
      missing.add(file);
      sizes.set(file, { raw: 0, brotli11: 0 });
    } else {
      const s = compressedSizes(readFileSync(path), file);
      sizes.set(file, { raw: s.raw, brotli11: s.brotli11 });
    }
  }
  return sizes.get(file);
}

for (const [name, b] of Object.entries(budget.budgets ?? {})) {
  if (!(Number.isInteger(b.brotli) && b.brotli > 0) || !Array.isArray(b.files) || !b.files.length) {
    console.error(`check-web-size: web-size-budget.json budget "${name}" needs files and a positive brotli byte count`);
    process.exit(2);
  }
}
const rows = Object.entries(budget.budgets).map(([name, b]) => {
  const files = b.files.map((f) => ({ file: f, ...brotli(f) }));
  const total = files.reduce((n, f) => n + f.brotli11, 0);
  return { name, files, total, raw: files.reduce((n, f) => n + f.raw, 0), budget: b.brotli };
});

if (process.argv.includes('--measure')) {
  console.log(JSON.stringify(Object.fromEntries(rows.map((r) => [r.name, { brotli: r.total, raw: r.raw, files: Object.fromEntries(r.files.map((f) => [f.file, f.brotli11])) }])), null, 2));
  process.exit(missing.size ? 2 : 0);
}
if (missing.size) {
  console.error(`check-web-size: missing npm/dist/${[...missing].join(', npm/dist/')} (run npm/scripts/build.sh)`);
  process.exit(2);
}

let over = 0;
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
for (const r of rows) {
  const ok = r.total <= r.budget;
  if (!ok) over++;
  const pct = ((r.total / r.budget) * 100).toFixed(1);
  console.log(`${ok ? 'ok  ' : 'OVER'} ${r.name.padEnd(8)} ${String(r.total).padStart(7)} B brotli (${kb(r.total)}) of ${r.budget} B budget (${pct}%)  [${r.files.map((f) => `${f.file} ${f.brotli11}`).join(', ')}]`);
}
if (over) {
  console.error(`check-web-size: ${over} budget(s) exceeded; shrink the build, or raise web-size-budget.json in a reviewed change that says why`);
  process.exit(1);
}
