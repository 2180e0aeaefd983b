#!/usr/bin/env bash
# Regenerates the committed UniFFI bindings of sdk-mobile from the release
# library, so that neither Android/iOS teams nor CI need to build
# uniffi-bindgen (it compiles clap & co.: minutes):
#   Kotlin -> sdk-mobile/kotlin/src/main/kotlin/dev/threadline/sdk/sdk_mobile.kt
#   Swift  -> sdk-mobile/swift/Sources/ThreadlineBindings/sdk_mobile.swift,
#             sdk-mobile/swift/Sources/ThreadlineFFI/sdk_mobileFFI.h and
#             .../ThreadlineFFI/module.modulemap (uniffi's sdk_mobileFFI.modulemap)
#
#   scripts/bindings.sh          # rebuild + regenerate
#   scripts/bindings.sh --check  # rebuild + fail if the committed files are stale
#
# Stale bindings are also caught at run time: the facade and the tests call
# uniffiEnsureInitialized(), which compares the API checksums with the
# loaded library.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "bindings: $*" >&2; }

check=0
[ "${1:-}" = "--check" ] && check=1

target="${CARGO_TARGET_DIR:-$root/target}"
kotlin_out="sdk-mobile/kotlin/src/main/kotlin/dev/threadline/sdk/sdk_mobile.kt"
swift_pkg="sdk-mobile/swift/Sources"
# generated name -> committed path
swift_dest() {
  case "$1" in
    sdk_mobile.swift) echo "$swift_pkg/ThreadlineBindings/sdk_mobile.swift" ;;
    sdk_mobileFFI.h) echo "$swift_pkg/ThreadlineFFI/sdk_mobileFFI.h" ;;
    sdk_mobileFFI.modulemap) echo "$swift_pkg/ThreadlineFFI/module.modulemap" ;;
    *) echo "" ;;
  esac
}

log "cargo build -p sdk-mobile --profile mobile"
cargo build -q -p sdk-mobile --profile mobile
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Library mode runs `cargo metadata`: it must run inside the workspace.
for lang in kotlin swift; do
  log "uniffi-bindgen generate --language $lang"
  cargo run -q -p sdk-mobile --features bindgen --bin uniffi-bindgen -- generate \
    --library "$target/mobile/libsdk_mobile.so" --language "$lang" --no-format --out-dir "$tmp/$lang"
done
gen_kotlin="$tmp/kotlin/dev/threadline/sdk/sdk_mobile.kt"
[ -f "$gen_kotlin" ] || { log "no $gen_kotlin (package name in sdk-mobile/uniffi.toml?)"; exit 1; }

if [ "$check" = 1 ]; then
  stale=0
  cmp -s "$gen_kotlin" "$kotlin_out" || { log "STALE: $kotlin_out"; stale=1; }
  for f in "$tmp"/swift/*; do
    dest=$(swift_dest "$(basename "$f")")
    [ -n "$dest" ] || { log "unexpected generated file $(basename "$f")"; stale=1; continue; }
    cmp -s "$f" "$dest" || { log "STALE: $dest"; stale=1; }
  done
  [ "$stale" = 0 ] && log "bindings are up to date"
  exit "$stale"
fi

mkdir -p "$(dirname "$kotlin_out")"
cp "$gen_kotlin" "$kotlin_out"
for f in "$tmp"/swift/*; do
  dest=$(swift_dest "$(basename "$f")")
  [ -n "$dest" ] || { log "unexpected generated file $(basename "$f")"; exit 1; }
  mkdir -p "$(dirname "$dest")"
  cp "$f" "$dest"
done
log "wrote $kotlin_out and the Swift package's generated files under $swift_pkg"
