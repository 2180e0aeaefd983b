#!/usr/bin/env bash
# The analytics-only web build, `@threadline/web/lite` (the core without its
# `decide` feature: no rules artifact, JSON Logic, profile, profile sync or
# bucketing), into npm/dist/lite: the wasm, its glue and the npm entry
# (index.js, compiled against this build's declarations, so the TypeScript
# entry is checked against it). Called by npm/scripts/build.sh, after the
# full build (whose JavaScript engine it borrows). Decision methods stay in the API:
# `decide`, `decideMany`, `displayed`, `clicked` and `loadRules` throw a
# TypeError with kind `decide.unavailable` / `rules.unavailable`, `ready()`
# resolves false, `rulesRevision()` is null, the refresh calls do nothing;
# a `rules`, `profile` or `profileSync` option is refused by createClient.
# Not built here: an inline entry, a tag-manager script or a wasm2js engine of
# its own: a strict-CSP page imports the full build's JavaScript engine.
# Same tools as npm/scripts/build.sh (scripts/setup.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out=npm/dist/lite
crate=sdk_wasm

# The same target directory as the full build (std and the dependencies are
# shared; sdk-core and sdk-wasm get their own hashes), but the uplifted
# $crate.wasm is overwritten: copy it out at once, and do not run this
# concurrently with npm/scripts/build.sh.
WASM_CARGO_QUIET=1 WASM_IMMEDIATE_ABORT=1 \
  scripts/wasm-cargo.sh rustc -q -p sdk-wasm --no-default-features --profile wasm-release --lib --crate-type cdylib
target_dir="${CARGO_TARGET_DIR:-$root/target}"
rm -rf "$out"
mkdir -p "$out"
wasm-bindgen --target web --out-dir "$out" "$target_dir/wasm32-unknown-unknown/wasm-release/$crate.wasm"
npx --prefix npm --no-install wasm-opt -Oz --low-memory-unused "$out/${crate}_bg.wasm" -o "$out/${crate}_bg.wasm"
rm -f "$out/${crate}_bg.wasm.d.ts"
# The JavaScript engine the entry imports on strict-CSP pages: the full build's.
[ -f "npm/dist/${crate}_js.js" ] || { echo "build-lite: run npm/scripts/build.sh (the full build) first" >&2; exit 1; }
printf '%s\n' "export { Threadline, initJs } from '../${crate}_js.js';" > "$out/${crate}_js.js"
printf '%s\n' "export { Threadline } from './${crate}.js';" "/** Starts the JavaScript engine (once). */" \
  "export function initJs(): unknown;" > "$out/${crate}_js.d.ts"
(cd npm && npx --no-install tsc -p tsconfig.lite.json)
echo "build-lite: $out ready ($(wc -c < "$out/${crate}_bg.wasm") bytes wasm, $(wc -c < "$out/${crate}.js") bytes glue, $(wc -c < "$out/index.js") bytes entry)"
