#!/usr/bin/env node
// The committed Swift bindings must come from the same library as the
// committed Kotlin ones. The Kotlin tests prove the Kotlin file matches the
// library (uniffiEnsureInitialized compares UniFFI's per-function API
// checksums); no Swift compiler runs here, so this compares the checksums
// and the contract version written into both generated files instead. A
// stale Swift file (the API changed, scripts/bindings.sh not re-run) fails.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const files = {
  kotlin: 'sdk-mobile/kotlin/src/main/kotlin/dev/threadline/sdk/sdk_mobile.kt',
  swift: 'sdk-mobile/swift/Sources/ThreadlineBindings/sdk_mobile.swift',
};
const checksums = (text) => {
  const m = new Map();
  for (const [, name, value] of text.matchAll(/(uniffi_sdk_mobile_checksum_\w+)\(\)(?:\s+and\s+0xFFFF\))?\s*!=\s*(\d+)/g)) {
    m.set(name, value);
  }
  return m;
};
const got = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, checksums(readFileSync(join(root, f), 'utf8'))]));
const problems = [];
if (got.kotlin.size < 10) problems.push(`only ${got.kotlin.size} checksums found in ${files.kotlin}`);
for (const [name, value] of got.kotlin) {
  if (got.swift.get(name) !== value) problems.push(`${name}: kotlin ${value}, swift ${got.swift.get(name) ?? 'missing'}`);
}
for (const name of got.swift.keys()) if (!got.kotlin.has(name)) problems.push(`${name}: only in swift`);
if (problems.length) {
  console.error(`check-bindings: the Swift bindings do not match the Kotlin ones (run scripts/bindings.sh):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-bindings: ${got.kotlin.size} API checksums agree between the Kotlin and Swift bindings`);
