#!/usr/bin/env bash
# Builds Threadline for Android: libsdk_mobile.so for arm64-v8a, armeabi-v7a
# and x86_64 with cargo-ndk, stripped, into sdk-mobile/kotlin/src/main/jniLibs/<abi>/,
# then an AAR (a zip of AndroidManifest.xml, classes.jar, jni/<abi>/*.so,
# R.txt and proguard.txt) at target/android/threadline-<version>.aar with a
# POM next to it naming the runtime dependencies an AAR cannot carry.
#
#   scripts/build-android.sh              # libraries + AAR
#   scripts/build-android.sh --libs-only  # libraries only (scripts/mobile-size.sh uses this)
#   scripts/build-android.sh --aar-only   # AAR from the libraries already in jniLibs/
#   scripts/build-android.sh --find-ndk   # print the NDK that would be used, exit 3 if none
#
# Needs: an Android NDK (ANDROID_NDK_HOME, ANDROID_NDK_ROOT, NDK_HOME, or
# $ANDROID_HOME/ndk/<version>, the same search as cargo-ndk), `cargo install
# cargo-ndk`, the rustup targets (added here when rustup is present); for the
# AAR also ANDROID_HOME with a platforms/android-<n>/android.jar, the Kotlin
# compiler (sdk-mobile/kotlin/node_modules or KOTLIN_HOME, see
# scripts/setup.sh) and JNA (Debian's /usr/share/java/jna.jar or JNA_JAR).
# The dev machine of this repository has no NDK: there the script stops with
# a message before building anything (see sdk-mobile/swift/README.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "build-android: $*" >&2; }
die() { log "$*"; exit 1; }

# Android ABIs, in build order, and their Rust targets (a function, not an
# associative array: macOS still ships bash 3.2).
abis=(arm64-v8a armeabi-v7a x86_64)
triple() {
  case "$1" in
    arm64-v8a) echo aarch64-linux-android ;;
    armeabi-v7a) echo armv7-linux-androideabi ;;
    x86_64) echo x86_64-linux-android ;;
  esac
}
# API 21 (Android 5.0): the lowest level current NDKs and cargo-ndk support.
min_sdk="${ANDROID_MIN_SDK:-21}"
# Overridable so the packaging can be exercised without touching the tree (see the swift README).
jnilibs="${ANDROID_JNILIBS_DIR:-sdk-mobile/kotlin/src/main/jniLibs}"
out="${ANDROID_OUT_DIR:-target/android}"

mode=all
case "${1:-}" in
  "") ;;
  --libs-only) mode=libs ;;
  --aar-only) mode=aar ;;
  --find-ndk) mode="find-ndk" ;;
  -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
  *) die "unknown option '$1' (see --help)" ;;
esac

# The highest versioned NDK below $1 (Android Studio's side-by-side layout),
# or $1 itself when it is an NDK.
ndk_in() {
  local dir=$1 best=""
  [ -d "$dir" ] || return 1
  if [ -f "$dir/source.properties" ] && [ -d "$dir/toolchains/llvm" ]; then
    echo "$dir"; return 0
  fi
  best=$(find "$dir" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' 2>/dev/null | sort -V | tail -n 1)
  [ -n "$best" ] && [ -f "$best/source.properties" ] || return 1
  echo "$best"
}

find_ndk() {
  local v
  for v in ANDROID_NDK_HOME ANDROID_NDK_ROOT ANDROID_NDK_PATH NDK_HOME; do
    if [ -n "${!v:-}" ]; then ndk_in "${!v}" && return 0; fi
  done
  for v in ANDROID_HOME ANDROID_SDK_ROOT; do
    if [ -n "${!v:-}" ]; then ndk_in "${!v}/ndk" && return 0; ndk_in "${!v}/ndk-bundle" && return 0; fi
  done
  ndk_in "$HOME/Android/Sdk/ndk" || ndk_in "$HOME/Library/Android/sdk/ndk"
}

# The NDK's llvm-strip (it knows every Android ABI; the host strip may not).
ndk_strip() {
  local s
  s=$(find "$1/toolchains/llvm/prebuilt" -maxdepth 3 -path '*/bin/llvm-strip' 2>/dev/null | head -n 1)
  [ -n "$s" ] || return 1
  echo "$s"
}

if [ "$mode" = find-ndk ]; then
  if ndk=$(find_ndk); then echo "$ndk"; exit 0; fi
  exit 3
fi

build_libs() {
  local ndk strip abi t so
  if ! ndk=$(find_ndk); then
    die "no Android NDK found (looked at ANDROID_NDK_HOME, ANDROID_NDK_ROOT, ANDROID_NDK_PATH, NDK_HOME,
  \$ANDROID_HOME/ndk/<version>, ~/Android/Sdk/ndk): install one with Android Studio's SDK manager or
  'sdkmanager --install \"ndk;<version>\"' (r23 or newer), then set ANDROID_NDK_HOME. Nothing was built."
  fi
  strip=$(ndk_strip "$ndk") || die "no llvm-strip under $ndk/toolchains/llvm/prebuilt: is this an NDK (r23 or newer)?"
  command -v cargo-ndk >/dev/null || die "cargo-ndk is missing: 'cargo install cargo-ndk' (about 2.5 min)"
  log "NDK: $ndk"
  if command -v rustup >/dev/null; then
    for abi in "${abis[@]}"; do rustup target add "$(triple "$abi")" >/dev/null; done
  fi
  for abi in "${abis[@]}"; do
    t=$(triple "$abi")
    # Google Play requires 16 KB page alignment of native code for 64-bit ABIs
    # (Android 15+ devices); NDK r28 does it by default, cargo-ndk 4 adds the
    # flag for older NDKs, cargo-ndk 3 does not: say it here, whatever the
    # versions. A per-target variable leaves the host build's cache alone.
    if [ "$abi" != armeabi-v7a ]; then
      local var
      var="CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
      export "$var=${!var:-} -C link-arg=-Wl,-z,max-page-size=16384"
    fi
    log "building $abi ($t, API $min_sdk)"
    cargo ndk -t "$abi" -P "$min_sdk" -o "$jnilibs" build -p sdk-mobile --profile mobile --lib
    so="$jnilibs/$abi/libsdk_mobile.so"
    [ -f "$so" ] || die "cargo-ndk did not produce $so"
    "$strip" --strip-all "$so"
    log "$so: $(( $(wc -c < "$so") / 1024 )) KiB stripped"
  done
}

find_android_jar() {
  if [ -n "${ANDROID_JAR:-}" ]; then echo "$ANDROID_JAR"; return 0; fi
  local sdk="${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}" jar
  [ -n "$sdk" ] || return 1
  jar=$(find "$sdk/platforms" -maxdepth 2 -name android.jar 2>/dev/null | sort -V | tail -n 1)
  [ -n "$jar" ] || return 1
  echo "$jar"
}

find_kotlinc() {
  local k
  for k in "${KOTLIN_HOME:-/nonexistent}/bin/kotlinc" \
           sdk-mobile/kotlin/node_modules/kotlin-compiler/bin/kotlinc \
           /opt/kotlinc/node_modules/kotlin-compiler/bin/kotlinc; do
    [ -x "$k" ] && { echo "$k"; return 0; }
  done
  return 1
}

assemble_aar() {
  local android_jar kotlinc jna version stage aar abi src
  for abi in "${abis[@]}"; do
    [ -f "$jnilibs/$abi/libsdk_mobile.so" ] || die "$jnilibs/$abi/libsdk_mobile.so is missing: run without --aar-only"
  done
  android_jar=$(find_android_jar) \
    || die "no android.jar: set ANDROID_HOME to an Android SDK with a platform installed (or ANDROID_JAR)"
  kotlinc=$(find_kotlinc) || die "no kotlinc: run scripts/setup.sh (npm kotlin-compiler) or set KOTLIN_HOME"
  jna="${JNA_JAR:-/usr/share/java/jna.jar}"
  [ -f "$jna" ] || die "no JNA jar at $jna: apt-get install libjna-java, or set JNA_JAR"
  version=$(cargo metadata --no-deps --format-version 1 \
    | sed -n 's/.*"name":"sdk-mobile","version":"\([^"]*\)".*/\1/p')
  [ -n "$version" ] || version=0.0.0

  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  stage="$out/aar"
  rm -rf "$stage" "$out/classes" "$out/bindings"; mkdir -p "$stage" "$out/classes"
  # The committed bindings (src/main/kotlin/dev/threadline/sdk/sdk_mobile.kt) must match the library
  # just built: an AAR with stale ones would fail its checksum check at the app's first call.
  # (Kotlin only here: scripts/bindings.sh --check would also judge the Swift files.)
  local committed=sdk-mobile/kotlin/src/main/kotlin/dev/threadline/sdk/sdk_mobile.kt
  local host_lib=target/mobile/libsdk_mobile.so
  [ "$(uname -s)" != Darwin ] || host_lib=target/mobile/libsdk_mobile.dylib
  cargo build -q -p sdk-mobile --profile mobile --lib
  cargo run -q -p sdk-mobile --features bindgen --bin uniffi-bindgen -- generate \
    --library "$host_lib" --language kotlin --no-format --out-dir "$out/bindings" >&2
  cmp -s "$out/bindings/dev/threadline/sdk/sdk_mobile.kt" "$committed" \
    || die "stale Kotlin bindings in $committed: run scripts/bindings.sh"
  src=(sdk-mobile/kotlin/src/main/kotlin)
  if [ -d sdk-mobile/kotlin/src/androidMain/kotlin ]; then src+=(sdk-mobile/kotlin/src/androidMain/kotlin); fi
  log "compiling Kotlin (${src[*]}) against $android_jar"
  # The stdlib stays out of classes.jar: the app gets it through the POM.
  "$kotlinc" "${src[@]}" -jvm-target 1.8 -cp "$android_jar:$jna" -d "$out/classes"
  (cd "$out/classes" && jar --create --file "$stage/classes.jar" --no-manifest .)

  cat > "$stage/AndroidManifest.xml" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="dev.threadline">
    <uses-sdk android:minSdkVersion="$min_sdk" />
    <uses-permission android:name="android.permission.INTERNET" />
    <uses-permission android:name="android.permission.ACCESS_NETWORK_STATE" />
</manifest>
EOF
  : > "$stage/R.txt"   # no resources
  # Consumer rules for R8 (JNA reaches the generated Structure fields by reflection; the JNI fast
  # path binds by class and method name): the same file the Gradle build ships.
  cp sdk-mobile/kotlin/consumer-rules.pro "$stage/proguard.txt"
  for abi in "${abis[@]}"; do
    mkdir -p "$stage/jni/$abi"
    cp "$jnilibs/$abi/libsdk_mobile.so" "$stage/jni/$abi/"
  done
  aar="$out/threadline-$version.aar"
  rm -f "$aar"
  (cd "$stage" && jar --create --file "$aar" --no-manifest .)

  # JNA ships its own native part per ABI as an AAR on Maven Central; an AAR
  # cannot embed another one, so the app resolves it from this POM.
  cat > "$out/threadline-$version.pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.threadline</groupId>
  <artifactId>threadline</artifactId>
  <version>$version</version>
  <packaging>aar</packaging>
  <dependencies>
    <dependency><groupId>net.java.dev.jna</groupId><artifactId>jna</artifactId><version>5.13.0</version><type>aar</type></dependency>
    <dependency><groupId>org.jetbrains.kotlin</groupId><artifactId>kotlin-stdlib</artifactId><version>2.1.0</version></dependency>
  </dependencies>
</project>
EOF
  log "AAR: $aar ($(( $(wc -c < "$aar") / 1024 )) KiB), POM: $out/threadline-$version.pom"
  unzip -l "$aar" >&2
}

case "$mode" in
  libs) build_libs ;;
  aar) assemble_aar ;;
  all) build_libs; assemble_aar ;;
esac
