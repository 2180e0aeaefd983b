#!/usr/bin/env bash
# Builds ThreadlineFFI.xcframework (macOS with Xcode only): the Rust library
# as a static library per Apple target, the simulator (and macOS) slices
# merged with lipo, with the UniFFI C header and module map, at
# sdk-mobile/swift/build/ThreadlineFFI.xcframework, where
# sdk-mobile/swift/Package.swift expects it; plus a zip and its SwiftPM
# checksum for a remote `binaryTarget(url:checksum:)`.
#
#   scripts/build-xcframework.sh                    # iOS device + simulator + macOS slices
#   scripts/build-xcframework.sh --ios-only         # no macOS slice (then `swift test` cannot run on the Mac)
#   scripts/build-xcframework.sh --update-bindings  # any OS: regenerate the checked-in Swift bindings
#   scripts/build-xcframework.sh --check-bindings   # any OS: fail if the checked-in bindings are stale
#
# The generated files live in the Swift package, so that SwiftPM users need
# no Rust toolchain for the Swift side:
#   sdk-mobile/swift/Sources/ThreadlineBindings/sdk_mobile.swift
#   sdk-mobile/swift/Sources/ThreadlineFFI/sdk_mobileFFI.h
#   sdk-mobile/swift/Sources/ThreadlineFFI/module.modulemap   (uniffi's sdk_mobileFFI.modulemap)
# A build regenerates them first, so the header always matches the library.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "build-xcframework: $*" >&2; }
die() { log "$*"; exit 1; }

pkg="sdk-mobile/swift"
gen_swift="$pkg/Sources/ThreadlineBindings/sdk_mobile.swift"
gen_ffi="$pkg/Sources/ThreadlineFFI"
out="target/apple"
xcf="$pkg/build/ThreadlineFFI.xcframework"
# Oldest OS versions the Swift layer supports (Package.swift says the same).
export IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-13.0}"
export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-10.15}"

mode=build macos=1
for a in "$@"; do
  case "$a" in
    --ios-only) macos=0 ;;
    --update-bindings) mode=update ;;
    --check-bindings) mode=check ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown option '$a' (see --help)" ;;
  esac
done

# Generates the Swift bindings of the host build of the library into $1
# (bindgen reads the metadata of any build of the same source).
generate() {
  local dir=$1 lib
  cargo build -q -p sdk-mobile --profile mobile --lib
  case "$(uname -s)" in
    Darwin) lib=target/mobile/libsdk_mobile.dylib ;;
    *) lib=target/mobile/libsdk_mobile.so ;;
  esac
  rm -rf "$dir"; mkdir -p "$dir"
  cargo run -q -p sdk-mobile --features bindgen --bin uniffi-bindgen -- generate \
    --library "$lib" --language swift --no-format --out-dir "$dir" >&2
  for f in sdk_mobile.swift sdk_mobileFFI.h sdk_mobileFFI.modulemap; do
    [ -f "$dir/$f" ] || die "uniffi-bindgen did not write $dir/$f"
  done
}

install_bindings() {
  local dir=$1
  mkdir -p "$(dirname "$gen_swift")" "$gen_ffi"
  cp "$dir/sdk_mobile.swift" "$gen_swift"
  cp "$dir/sdk_mobileFFI.h" "$gen_ffi/sdk_mobileFFI.h"
  # XCFrameworks and Clang look for `module.modulemap`.
  cp "$dir/sdk_mobileFFI.modulemap" "$gen_ffi/module.modulemap"
}

if [ "$mode" = update ] || [ "$mode" = check ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  generate "$tmp/gen"
  if [ "$mode" = update ]; then
    install_bindings "$tmp/gen"
    log "updated $gen_swift, $gen_ffi/sdk_mobileFFI.h, $gen_ffi/module.modulemap"
    exit 0
  fi
  stale=0
  cmp -s "$tmp/gen/sdk_mobile.swift" "$gen_swift" || { log "stale: $gen_swift"; stale=1; }
  cmp -s "$tmp/gen/sdk_mobileFFI.h" "$gen_ffi/sdk_mobileFFI.h" || { log "stale: $gen_ffi/sdk_mobileFFI.h"; stale=1; }
  cmp -s "$tmp/gen/sdk_mobileFFI.modulemap" "$gen_ffi/module.modulemap" \
    || { log "stale: $gen_ffi/module.modulemap"; stale=1; }
  [ "$stale" -eq 0 ] || die "the Swift bindings do not match sdk-mobile: run $0 --update-bindings"
  log "Swift bindings are up to date"
  exit 0
fi

if [ "$(uname -s)" != Darwin ]; then
  die "an XCFramework can only be built on macOS with Xcode (xcodebuild, lipo, the iOS SDKs); this is $(uname -s).
  Nothing was built. On Linux, only '$0 --check-bindings' / '--update-bindings' work."
fi
if ! command -v xcodebuild >/dev/null || ! xcrun --sdk iphoneos --show-sdk-path >/dev/null 2>&1; then
  die "Xcode with the iOS SDK is required (xcode-select --install is not enough: install Xcode, then 'sudo xcode-select -s /Applications/Xcode.app')"
fi
command -v rustup >/dev/null || die "rustup is required to add the Apple targets"

ios=(aarch64-apple-ios)
sim=(aarch64-apple-ios-sim x86_64-apple-ios)
mac=(aarch64-apple-darwin x86_64-apple-darwin)
targets=("${ios[@]}" "${sim[@]}")
[ "$macos" -eq 0 ] || targets+=("${mac[@]}")

rustup target add "${targets[@]}" >/dev/null
for t in "${targets[@]}"; do
  log "building $t"
  cargo build -p sdk-mobile --profile mobile --lib --target "$t"
done

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
generate "$tmp/gen"
install_bindings "$tmp/gen"

# Headers/<module>/module.modulemap rather than Headers/module.modulemap: two
# XCFrameworks with a top-level module map collide in an app's include tree.
headers="$out/headers"
rm -rf "$headers"; mkdir -p "$headers/sdk_mobileFFI"
cp "$gen_ffi/sdk_mobileFFI.h" "$gen_ffi/module.modulemap" "$headers/sdk_mobileFFI/"

lib() { echo "target/$1/mobile/libsdk_mobile.a"; }
mkdir -p "$out/ios-simulator" "$out/macos"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$out/ios-simulator/libsdk_mobile.a"
args=(-library "$(lib aarch64-apple-ios)" -headers "$headers"
      -library "$out/ios-simulator/libsdk_mobile.a" -headers "$headers")
if [ "$macos" -eq 1 ]; then
  lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$out/macos/libsdk_mobile.a"
  args+=(-library "$out/macos/libsdk_mobile.a" -headers "$headers")
fi
rm -rf "$xcf"; mkdir -p "$(dirname "$xcf")"
xcodebuild -create-xcframework "${args[@]}" -output "$xcf"

zip="$xcf.zip"
rm -f "$zip"
(cd "$(dirname "$xcf")" && ditto -c -k --keepParent "$(basename "$xcf")" "$(basename "$zip")")
# SwiftPM's checksum of a binary target is the SHA-256 of the zip.
checksum=$(shasum -a 256 "$zip" | cut -d' ' -f1)
log "XCFramework: $xcf"
log "zip: $zip (SwiftPM checksum $checksum)"
log "next: (cd $pkg && swift build && swift test)"
