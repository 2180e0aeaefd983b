#!/usr/bin/env bash
# "The app" of the cross-device story, for end-to-end tests: a JVM program
# (sdk-mobile/kotlin/src/storyApp) that drives the real Kotlin facade over the
# mobile library against a collector: views the slacks twice, identifies with
# a user token, buys them, waits until everything is delivered and prints
# {"deviceId": ..., "userId": ..., "delivered": n, "profile": ...} on stdout.
#
#   scripts/story-app.sh <collectorUrl> <userId> <userToken> [email]
#
# Env (passed through to the app): THREADLINE_WRITE_KEY, THREADLINE_STORY_DIR,
# THREADLINE_STORY_TIMEOUT_MS (see StoryApp.kt). Builds what it needs the first
# time (the mobile library, the committed bindings and the facade with the app,
# as scripts/test-kotlin.sh does: kotlinc from npm, Debian's JNA), cached under
# <target>/kotlin-story/ keyed by a hash of the sources; later runs only start
# the JVM. Build logs go to stderr; stdout is the app's JSON line only.
# Exit code: the app's (0 delivered, 1 not in time, 2 usage).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "story-app: $*" >&2; }

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  sed -n '8p' "$0" | sed 's/^# *//' >&2
  exit 2
fi

KOTLIN_HOME="$root/sdk-mobile/kotlin/node_modules/kotlin-compiler"
kotlinc="$KOTLIN_HOME/bin/kotlinc"
jna=/usr/share/java/jna.jar
stdlib="$KOTLIN_HOME/lib/kotlin-stdlib.jar"
for f in "$kotlinc" "$jna" "$stdlib"; do
  [ -e "$f" ] || { log "missing $f: run scripts/setup.sh"; exit 1; }
done
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/kotlin-story"
mkdir -p "$out"
src="sdk-mobile/kotlin/src"

cargo build -q -p sdk-mobile --profile mobile >&2

hash_of() {
  { grep '"version"' "$KOTLIN_HOME/package.json" | head -1; \
    for f in "$@"; do echo "== $f"; cat "$f"; done; } | sha256sum | cut -c1-16
}

# compile <jar> <classpath> <sources...>, into a temp file then renamed: an interrupted or concurrent
# build never leaves a jar that looks cached.
compile() {
  local jar="$1" cp="$2"
  shift 2
  local t0=$SECONDS tmp
  tmp="$(mktemp "$out/build-XXXXXX.jar")"
  log "kotlinc -> ${jar#"$root"/} ($# files)"
  "$kotlinc" -nowarn -jvm-target 17 -cp "$cp" -d "$tmp" "$@" >&2
  mv -f "$tmp" "$jar"
  log "compiled in $((SECONDS - t0)) s"
}

gen_src="$src/main/kotlin/dev/threadline/sdk/sdk_mobile.kt"
bindings_jar="$out/bindings-$(hash_of "$gen_src").jar"
[ -f "$bindings_jar" ] || compile "$bindings_jar" "$jna" "$gen_src"
mapfile -t app_src < <(find "$src/main/kotlin" "$src/storyApp/kotlin" -name '*.kt' ! -path "$gen_src" | LC_ALL=C sort)
app_jar="$out/app-$(hash_of "$bindings_jar" "${app_src[@]}").jar"
[ -f "$app_jar" ] || compile "$app_jar" "$bindings_jar:$jna" "${app_src[@]}"
# Keep only the current jars.
find "$out" -maxdepth 1 -name 'bindings-*.jar' ! -name "$(basename "$bindings_jar")" -delete
find "$out" -maxdepth 1 -name 'app-*.jar' ! -name "$(basename "$app_jar")" -delete

exec java -Djna.library.path="$target/mobile" -Djava.library.path="$target/mobile" \
  -cp "$app_jar:$bindings_jar:$jna:$stdlib" dev.threadline.story.StoryAppKt "$@"
