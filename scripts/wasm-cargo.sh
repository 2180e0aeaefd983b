#!/usr/bin/env bash
# Run a cargo subcommand for wasm32-unknown-unknown on any machine.
#   scripts/wasm-cargo.sh build -p sdk-wasm
#   scripts/wasm-cargo.sh rustc -p sdk-wasm --profile wasm-release --lib --crate-type cdylib
#   scripts/wasm-cargo.sh test  -p sdk-wasm
# WASM_IMMEDIATE_ABORT=1 (release builds only) drops panic machinery from std
# where std is built from source.
# Uses the rustup target when it is installed; otherwise Debian's rustc-web
# with the std source compiled by build-std and linked by wasm-ld-22 (see
# ../shared/toolchain.md). Every wasm cargo call goes through here so the
# environment, and with it the build cache, stays identical.
set -euo pipefail
T=wasm32-unknown-unknown
if rustup target list --installed 2>/dev/null | grep -qx "$T" \
   || [ -d "$(rustc --print sysroot 2>/dev/null)/lib/rustlib/$T/lib" ]; then
  WASM_ROUTE=rustup
elif [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library/std ] \
     && command -v wasm-ld-22 >/dev/null; then
  WASM_ROUTE=debian-build-std
  export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
  export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22
  # Release builds compile std with the immediate-abort panic strategy: no
  # panic messages or locations in the binary (about 6 KB brotli less). Our
  # code never panics on input; if it ever did, the instance traps either way.
  if [ -n "${WASM_IMMEDIATE_ABORT:-}" ]; then
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort"
  fi
else
  echo "no wasm32 toolchain: 'rustup target add $T', or run scripts/setup.sh" >&2
  exit 1
fi
[ -n "${WASM_CARGO_QUIET:-}" ] || echo "wasm-cargo: route=$WASM_ROUTE" >&2
sub=$1; shift
exec cargo "$sub" --target "$T" "$@"
