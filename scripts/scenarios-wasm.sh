#!/usr/bin/env bash
# Runs every tests/scenarios/*.json against the core compiled to wasm, in
# Node (the contract: tests/scenarios/README.md):
#   1. builds sdk-wasm with the `scenario` feature (the ScenarioCore harness;
#      a debug build: the scenarios take well under a second either way),
#   2. generates the Node bindings with wasm-bindgen into target/scenario-wasm,
#   3. runs tests/scenarios/run-wasm.mjs, which writes one transcript per
#      scenario to target/scenarios/wasm/<file name>.txt.
# Needs what scripts/setup.sh installs (wasm32 toolchain, wasm-bindgen-cli)
# and Node 20. Extra arguments go to the runner (--scenarios DIR, --out DIR).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

WASM_CARGO_QUIET=1 scripts/wasm-cargo.sh build -q -p sdk-wasm --lib --features scenario
wasm="$target/wasm32-unknown-unknown/debug/sdk_wasm.wasm"
[ -f "$wasm" ] || { echo "scenarios-wasm: no $wasm after the build" >&2; exit 1; }
rm -rf "$root/target/scenario-wasm"
wasm-bindgen --target nodejs --out-dir "$root/target/scenario-wasm" "$wasm"
exec node tests/scenarios/run-wasm.mjs --harness "$root/target/scenario-wasm" "$@"
