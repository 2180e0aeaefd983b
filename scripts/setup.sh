#!/usr/bin/env bash
# Installs what the demo and the tests need, skipping whatever is already
# there (a second run takes a few seconds):
#   - Debian packages: chromium + chromium-driver (browser tests, demo check),
#     and when the rustup wasm32 target is missing, the wasm route of
#     ../shared/toolchain.md: rustc-web, rust-web-src, lld-22;
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock;
#   - Debian's JNA, JUnit 4 + Hamcrest and Gson for the Kotlin (JVM) tests
#     (Maven Central is not reachable: ../shared/toolchain-mobile.md);
#   - the npm dev dependencies of npm/ (binaryen's wasm-opt, TypeScript),
#     tests/ (playwright-core) and sdk-mobile/kotlin/ (the Kotlin compiler),
#     from their lockfiles.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "setup: $*" >&2; }

# --- Debian packages -------------------------------------------------------
pkgs=(chromium chromium-driver libjna-java junit4 libhamcrest-java libgoogle-gson-java)
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
   && [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown/lib" ]; then
  pkgs+=(rustc-web rust-web-src lld-22)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- wasm-bindgen-cli, pinned to Cargo.lock ---------------------------------
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ -z "$want" ]; then
  log "Cargo.lock names no wasm-bindgen version"; exit 1
fi
if [ "$want" != "$have" ]; then
  # No --locked: its lockfile pins a webpki-roots the reachable registry
  # lacks (../shared/toolchain.md). The exact --version is what matters.
  log "installing wasm-bindgen-cli $want (found '${have:-none}'; takes ~6 min cold)"
  cargo install -q wasm-bindgen-cli --version "$want"
fi

# --- npm dev dependencies ----------------------------------------------------
for dir in npm tests tests/vite-app sdk-mobile/kotlin; do
  stamp="$dir/node_modules/.threadline-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    log "npm ci in $dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
done
log "ok"
