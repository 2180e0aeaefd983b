#!/usr/bin/env bash
# Builds npm/dist/threadline.js: the tag-manager build, one minified IIFE
# (the npm wrapper, the wasm-bindgen glue and src/snippet.ts) for
# `<script async src=...>`. It loads sdk_wasm_bg.wasm from its own directory.
# Runs after npm/scripts/build.sh has produced dist/index.js and dist/sdk_wasm.js.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/threadline.js
for f in dist/snippet.js dist/index.js dist/sdk_wasm.js dist/sdk_wasm_bg.wasm; do
  [ -f "$f" ] || { echo "build-iife: $f is missing; run npm/scripts/build.sh" >&2; exit 1; }
done
# import.meta does not exist in a classic script; the entry always passes the
# wasm URL (beside the script, from document.currentScript), so the glue's
# import.meta.url default is never reached: define it away.
npx --no-install esbuild dist/snippet.js --bundle --format=iife --platform=browser --target=es2020 \
  --minify --legal-comments=none --charset=utf8 --define:import.meta.url=undefined \
  --external:./sdk_wasm_js.js \
  --log-level=warning --outfile="$out"
# The JavaScript engine (the strict-CSP fallback, 3.9 MB raw) stays a
# separate file, imported only when needed from the URL the entry passes.
# No code from strings: a page's CSP without 'unsafe-eval' must run it.
if grep -nE '\beval\(|new Function\b|\bFunction\(' "$out" >/dev/null; then
  echo "build-iife: $out contains eval or new Function" >&2
  exit 1
fi
raw=$(wc -c < "$out")
if command -v brotli >/dev/null; then
  br=$(brotli -c -q 11 "$out" | wc -c)
else
  br=$(node -e 'const z=require("zlib");process.stdout.write(String(z.brotliCompressSync(require("fs").readFileSync(process.argv[1]),{params:{[z.constants.BROTLI_PARAM_QUALITY]:11}}).length))' "$out")
fi
echo "build-iife: $out ready ($raw bytes, $br bytes brotli)"
