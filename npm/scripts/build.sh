#!/usr/bin/env bash
# Builds the npm package into npm/dist: the size-optimised wasm core
# (cargo → wasm-bindgen → wasm-opt -Oz), its JS glue, the TypeScript
# entry points with declarations (index.js; inline.js with the wasm inside),
# and the JavaScript engine for pages whose CSP forbids WebAssembly
# (sdk_wasm_js.js: the core built without reference types → wasm-bindgen →
# binaryen's wasm2js, see scripts/wasm2js-module.mjs). Needs
# scripts/setup.sh to have run.
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
# --low-memory-unused: nothing valid lives below address 1024 (rustc links the
# 1 MiB stack first, data starts at 1 MiB; only the last KiB of a full stack
# would be there), so binaryen may fold pointer arithmetic into load/store
# offsets: about 1 KB brotli less wasm, and as much less wasm2js output.
opt_low=--low-memory-unused
npx --prefix npm --no-install wasm-opt -Oz $opt_low "$out/${crate}_bg.wasm" -o "$out/${crate}_bg.wasm"
rm -f "$out/${crate}_bg.wasm.d.ts"

# The JavaScript engine. wasm2js cannot translate a second table (the
# externref table wasm-bindgen uses with reference types), so this core is
# built without them, in its own target directory (other rustflags would
# otherwise rebuild the main core's cache every time).
js_target="$target_dir/wasm2js"
WASM_CARGO_QUIET=1 CARGO_TARGET_DIR="$js_target" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Ctarget-feature=-reference-types,-multivalue" \
  scripts/wasm-cargo.sh rustc -q -p sdk-wasm --profile wasm-release --lib --crate-type cdylib
js_tmp="$(mktemp -d)"
trap 'rm -rf "$js_tmp"' EXIT
wasm-bindgen --target web --out-dir "$js_tmp" "$js_target/wasm32-unknown-unknown/wasm-release/$crate.wasm"
# wasm2js mistranslates the saturating float-to-int conversions (invalid
# output); lower them to plain ones with range checks first.
npx --prefix npm --no-install wasm-opt --llvm-nontrapping-fptoint-lowering $opt_low \
  "$js_tmp/${crate}_bg.wasm" -o "$js_tmp/lowered.wasm"
npx --prefix npm --no-install wasm2js -Oz $opt_low "$js_tmp/lowered.wasm" -o "$js_tmp/core.js"
node npm/scripts/wasm2js-module.mjs "$js_tmp/$crate.js" "$js_tmp/core.js" "$out/${crate}_js.js"
printf '%s\n' "export { Threadline } from './${crate}.js';" "/** Starts the JavaScript engine (once). */" \
  "export function initJs(): unknown;" > "$out/${crate}_js.d.ts"

# The inline entry's wasm, as base64 in a module of its own.
node npm/scripts/inline-wasm.mjs "$out/${crate}_bg.wasm" "$out/${crate}_inline.js"

(cd npm && npx --no-install tsc -p tsconfig.json)
echo "build: npm/dist ready ($(wc -c < "$out/${crate}_bg.wasm") bytes wasm, $(wc -c < "$out/${crate}.js") bytes glue, $(wc -c < "$out/index.js") bytes entry)"
npm/scripts/build-iife.sh
npm/scripts/build-lite.sh
