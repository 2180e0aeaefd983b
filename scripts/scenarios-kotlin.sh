#!/usr/bin/env bash
# Runs every tests/scenarios/*.json on the JVM against the real mobile Client
# (sdk-mobile: UniFFI bindings over JNA, scripted clock and random source),
# and writes one transcript per scenario to target/scenarios/kotlin/.
#
#   scripts/scenarios-kotlin.sh              # all scenarios
#   scripts/scenarios-kotlin.sh gpc alias    # only these (by file name)
#
# Needs scripts/setup.sh (JNA, Gson, the Kotlin compiler from npm). Builds
# `cargo build -p sdk-mobile --profile mobile` (incremental), uses the committed
# bindings sdk-mobile/kotlin/src/main/kotlin/dev/threadline/sdk/sdk_mobile.kt
# when present (set TL_BINDINGS=generated to generate them from the library
# instead; stale committed bindings are detected and regenerated), and caches
# the compiled jars under target/kotlin-scenarios/ keyed by a hash of their
# sources, so a re-run only starts the JVM (~5 s).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "scenarios-kotlin: $*" >&2; }

kotlin_home="$root/sdk-mobile/kotlin/node_modules/kotlin-compiler"
kotlinc="$kotlin_home/bin/kotlinc"
jna=/usr/share/java/jna.jar
gson=/usr/share/java/gson.jar
stdlib="$kotlin_home/lib/kotlin-stdlib.jar"
for f in "$kotlinc" "$jna" "$gson" "$stdlib"; do
  [ -e "$f" ] || { log "missing $f: run scripts/setup.sh first"; exit 1; }
done

target="${CARGO_TARGET_DIR:-$root/target}"
cache="$target/kotlin-scenarios"
mkdir -p "$cache"
committed="$root/sdk-mobile/kotlin/src/main/kotlin/dev/threadline/sdk/sdk_mobile.kt"
runner_src="$root/sdk-mobile/kotlin/src/scenarioTest/kotlin"
lib="$target/mobile/libsdk_mobile.so"

log "cargo build -p sdk-mobile --profile mobile"
cargo build -q -p sdk-mobile --profile mobile

generate() {
  log "generating Kotlin bindings from $lib"
  rm -rf "$cache/gen"
  cargo run -q -p sdk-mobile --features bindgen --bin uniffi-bindgen -- generate \
    --library "$lib" --language kotlin --no-format --out-dir "$cache/gen" >&2
  echo "$cache/gen/dev/threadline/sdk/sdk_mobile.kt"
}

# Compiles $1 (the bindings source) and the runner unless cached; sets $bindings_jar, $runner_jar.
compile() {
  local src="$1" bhash rhash
  bhash=$( (sha256sum <"$src"; grep '"version"' "$kotlin_home/package.json") | sha256sum | cut -c1-16)
  bindings_jar="$cache/bindings-$bhash.jar"
  if [ ! -f "$bindings_jar" ]; then
    log "compiling the bindings ($(basename "$src"), ~20-40 s)"
    "$kotlinc" "$src" -cp "$jna" -nowarn -d "$cache/bindings.tmp.jar"
    mv "$cache/bindings.tmp.jar" "$bindings_jar"
  fi
  rhash=$( (echo "$bhash"; find "$runner_src" -name '*.kt' -type f | sort | xargs sha256sum) | sha256sum | cut -c1-16)
  runner_jar="$cache/runner-$rhash.jar"
  if [ ! -f "$runner_jar" ]; then
    log "compiling the runner (~30-60 s)"
    "$kotlinc" "$runner_src" -cp "$bindings_jar:$jna:$gson" -nowarn -d "$cache/runner.tmp.jar"
    mv "$cache/runner.tmp.jar" "$runner_jar"
  fi
  # Keep only the jars of the current sources.
  find "$cache" -maxdepth 1 -name 'bindings-*.jar' ! -name "$(basename "$bindings_jar")" -delete
  find "$cache" -maxdepth 1 -name 'runner-*.jar' ! -name "$(basename "$runner_jar")" -delete
}

run() {
  java -Djna.library.path="$target/mobile" -Djava.library.path="$target/mobile" \
    -cp "$runner_jar:$bindings_jar:$jna:$gson:$stdlib" dev.threadline.sdk.scenarios.Scenarios \
    "$root/tests/scenarios" "$target/scenarios/kotlin" "$@"
}

if [ -f "$committed" ] && [ "${TL_BINDINGS:-}" != generated ]; then
  compile "$committed"
  set +e
  run "$@"
  rc=$?
  set -e
  if [ "$rc" -ne 3 ]; then exit "$rc"; fi
  log "the committed bindings $committed do not match the library (stale): using freshly generated ones"
fi
generated=$(generate)
compile "$generated"
run "$@"
