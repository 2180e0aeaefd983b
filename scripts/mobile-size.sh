#!/usr/bin/env bash
# Size of the stripped release library of sdk-mobile per target, against the
# budgets in sdk-mobile/size-budget.toml (what is measured and why those
# numbers: see that file). Builds the host library, every Android ABI when an
# NDK is present (through scripts/build-android.sh --libs-only) and iOS arm64
# on a Mac with Xcode; prints KiB per target and exits 1 when any measured
# target is over its budget. Targets that cannot be built here are listed as
# skipped, with the reason.
#
#   scripts/mobile-size.sh              # host + whatever else this machine can build
#   scripts/mobile-size.sh --host-only
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "mobile-size: $*" >&2; }
# MOBILE_SIZE_BUDGET: another budget file (used to test the failure path).
budget_file="${MOBILE_SIZE_BUDGET:-sdk-mobile/size-budget.toml}"

host_only=0
case "${1:-}" in
  "") ;;
  --host-only) host_only=1 ;;
  -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
  *) log "unknown option '$1'"; exit 2 ;;
esac

# The budget of target $1 in KiB from the [budget_kib] table, empty if none.
budget() {
  awk -v t="$1" '
    /^\[/ { in_table = ($0 ~ /^\[budget_kib\][ \t]*(#.*)?$/); next }
    in_table && $1 == t && $2 == "=" { v = $3; sub(/#.*/, "", v); print v; exit }
  ' "$budget_file"
}

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
over=0 measured=0
printf '%-28s %9s %9s %9s  %s\n' target KiB budget gzip-KiB status
# report <target> <library> <strip command...>: strips a copy and prints a row.
report() {
  local target=$1 lib=$2 copy bytes kib gz b status
  shift 2
  copy="$tmp/$target-$(basename "$lib")"
  cp "$lib" "$copy"
  "$@" "$copy"
  bytes=$(wc -c < "$copy" | tr -d ' ')
  kib=$(( (bytes + 1023) / 1024 ))
  gz=$(( ($(gzip -9 -c "$copy" | wc -c | tr -d ' ') + 1023) / 1024 ))
  b=$(budget "$target")
  if [ -z "$b" ]; then
    status="no budget in $budget_file (not checked)"
  elif [ "$kib" -le "$b" ]; then
    status="ok ($bytes bytes)"
  else
    status="OVER BUDGET by $((kib - b)) KiB ($bytes bytes)"
    over=1
  fi
  measured=$((measured + 1))
  printf '%-28s %9s %9s %9s  %s\n' "$target" "$kib" "${b:--}" "$gz" "$status"
}
skip() { printf '%-28s %9s %9s %9s  skipped: %s\n' "$1" - "$(budget "$1")" - "$2"; }

# --- host ---------------------------------------------------------------------
host=$(rustc -vV | sed -n 's/^host: //p')
log "building sdk-mobile (profile mobile) for $host"
cargo build -q -p sdk-mobile --profile mobile --lib
case "$(uname -s)" in
  Darwin) report "$host" target/mobile/libsdk_mobile.dylib strip -x ;;
  *) report "$host" target/mobile/libsdk_mobile.so strip --strip-all ;;
esac

# --- Android ------------------------------------------------------------------
android=(arm64-v8a:aarch64-linux-android armeabi-v7a:armv7-linux-androideabi x86_64:x86_64-linux-android)
if [ "$host_only" -eq 1 ]; then
  for a in "${android[@]}"; do skip "${a#*:}" "--host-only"; done
elif ! scripts/build-android.sh --find-ndk >/dev/null; then
  for a in "${android[@]}"; do skip "${a#*:}" "no Android NDK on this machine"; done
else
  log "building the Android ABIs (scripts/build-android.sh --libs-only)"
  scripts/build-android.sh --libs-only
  for a in "${android[@]}"; do
    # Already stripped by build-android.sh with the NDK's llvm-strip; `true`
    # keeps the copy as it is.
    report "${a#*:}" "${ANDROID_JNILIBS_DIR:-sdk-mobile/kotlin/src/main/jniLibs}/${a%%:*}/libsdk_mobile.so" true
  done
fi

# --- iOS ----------------------------------------------------------------------
if [ "$host_only" -eq 1 ]; then
  skip aarch64-apple-ios "--host-only"
elif [ "$(uname -s)" != Darwin ] || ! xcrun --sdk iphoneos --show-sdk-path >/dev/null 2>&1; then
  skip aarch64-apple-ios "needs macOS with Xcode and the iOS SDK"
else
  rustup target add aarch64-apple-ios >/dev/null
  log "building sdk-mobile (profile mobile) for aarch64-apple-ios"
  IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-13.0}" \
    cargo build -q -p sdk-mobile --profile mobile --lib --target aarch64-apple-ios
  report aarch64-apple-ios target/aarch64-apple-ios/mobile/libsdk_mobile.dylib strip -x
fi

if [ "$over" -ne 0 ]; then
  log "at least one library is over its budget ($budget_file)"
  exit 1
fi
log "$measured target(s) measured, all within budget"
