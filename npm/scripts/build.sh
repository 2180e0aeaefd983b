#!/usr/bin/env bash
# Builds the npm package into npm/dist: the size-optimised wasm core
# (cargo → wasm-bindgen → wasm-opt -Oz), its JS glue, and the TypeScript
# entry point with declarations. Needs scripts/setup.sh to have run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out=npm/dist
crate=sdk_wasm

want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$want" != "$have" ]; then
  echo "build: wasm-bindgen-cli $want is needed (found '${have:-none}'); run scripts/setup.sh" >&2
  exit 1
fi

# `cargo rustc --crate-type cdylib`, not `cargo build`: LTO is silently
# skipped for a cdylib+rlib crate under `cargo build`.
WASM_CARGO_QUIET=1 WASM_IMMEDIATE_ABORT=1 \
  scripts/wasm-cargo.sh rustc -q -p sdk-wasm --profile wasm-release --lib --crate-type cdylib
target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$out"
wasm-bindgen --target web --out-dir "$out" "$target_dir/wasm32-unknown-unknown/wasm-release/$crate.wasm"
npx --prefix npm --no-install wasm-opt -Oz "$out/${crate}_bg.wasm" -o "$out/${crate}_bg.wasm"
rm -f "$out/${crate}_bg.wasm.d.ts"
(cd npm && npx --no-install tsc -p tsconfig.json)
echo "build: npm/dist ready ($(wc -c < "$out/${crate}_bg.wasm") bytes wasm, $(wc -c < "$out/${crate}.js") bytes glue, $(wc -c < "$out/index.js") bytes entry)"
npm/scripts/build-iife.sh
