#!/usr/bin/env bash
# Runs the end-to-end delivery tests (tests/e2e/*.test.mjs) in headless
# Chromium against the reference collector, one file at a time.
# Needs: npm/scripts/build.sh (npm/dist) and `cargo build -p threadline-collector`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

missing=()
for f in index.js sdk_wasm.js sdk_wasm_bg.wasm; do
  [ -f "npm/dist/$f" ] || missing+=("npm/dist/$f (build it with npm/scripts/build.sh)")
done
collector="${THREADLINE_COLLECTOR:-${CARGO_TARGET_DIR:-$root/target}/debug/threadline-collector}"
[ -x "$collector" ] || missing+=("$collector (build it with: cargo build -p threadline-collector)")
[ -d tests/node_modules/playwright-core ] || missing+=("tests/node_modules/playwright-core (run: npm ci --prefix tests)")
chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
[ -x "$chromium" ] || missing+=("$chromium (Debian's chromium package, or set CHROMIUM_BIN)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/e2e: missing prerequisites:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 2
fi

exec node --test --test-concurrency=1 "$@" tests/e2e/
