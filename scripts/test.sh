#!/usr/bin/env bash
# Runs every test: the README's test command, and all that .ci/run calls.
#   1. installs what is missing (scripts/setup.sh, idempotent);
#   2. rustfmt and clippy (-D warnings) over the workspace;
#   3. native tests: sdk-core units and property tests, the collector;
#   4. sdk-wasm tests in headless Chromium (wasm-bindgen-test);
#   5. the mobile library: its size against sdk-mobile/size-budget.toml, and
#      the Kotlin facade's tests on the JVM against the collector;
#   6. the shared scenario suite on wasm (Node) and Kotlin (JVM), and every
#      runner's transcript identical to the native one;
#   7. the release build of the npm package;
#   8. end-to-end tests in Chromium against the collector with faults;
#   9. the demo's scripted visit (scripts/demo.sh --check).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A full run builds every target once; incremental caches would only double
# the disk it needs (a CI box once ran out). Set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step_start=0
step() {
  local now; now=$(date +%s)
  [ "$step_start" -eq 0 ] || echo "test: ... took $((now - step_start)) s" >&2
  step_start=$now
  echo "test: == $* ==" >&2
}

step "setup"
scripts/setup.sh

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy -q --workspace --all-targets -- -D warnings

step "clippy: the analytics-only core (no decide feature, as @threadline/web/lite builds it)"
cargo clippy -q -p sdk-core -p sdk-wasm --no-default-features -- -D warnings

step "native tests (sdk-core, collector, sdk-mobile)"
cargo test -q --workspace

step "sdk-wasm tests in headless Chromium"
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
# No -q: cargo would pass --quiet on to wasm-bindgen-test-runner, which refuses it.
WASM_CARGO_QUIET=1 scripts/wasm-cargo.sh test -p sdk-wasm

step "mobile library size budget"
scripts/mobile-size.sh

step "Kotlin on the JVM: facade tests against the collector"
scripts/test-kotlin.sh
node scripts/check-bindings.mjs

step "scenario suite: wasm (Node) and Kotlin (JVM) runners, transcripts compared"
scripts/scenarios-wasm.sh
scripts/scenarios-kotlin.sh
node scripts/scenarios-compare.mjs native wasm kotlin

step "npm package release build"
npm/scripts/build.sh

step "web package checks: shipped files (no eval, no third-party URLs), size budget, SSR import"
node scripts/check-web-dist.mjs
node scripts/check-web-size.mjs
node --test tests/ssr/

step "end-to-end tests in Chromium"
cargo build -q -p threadline-collector
tests/e2e/run.sh

step "demo check"
scripts/demo.sh --check

step "done"
echo "test: target/ holds $(du -sh target 2>/dev/null | cut -f1)" >&2
echo "test: all tests passed" >&2
