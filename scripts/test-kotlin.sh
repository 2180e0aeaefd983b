#!/usr/bin/env bash
# The Kotlin layer of sdk-mobile on the JVM: builds the native library and the
# reference collector, compiles the committed UniFFI bindings + the facade into
# a jar (cached under target/kotlin/, keyed by a hash of the sources), then
# compiles and runs the JUnit 4 tests against the real library.
#
#   scripts/test-kotlin.sh            # the tests (exit code != 0 on any failure)
#   scripts/test-kotlin.sh --bench    # the track() micro-benchmark instead
#   scripts/test-kotlin.sh Name ...   # only these test classes (simple names)
#
# Needs what scripts/setup.sh installs: kotlinc from npm (sdk-mobile/kotlin),
# Debian's JNA, JUnit 4 and Hamcrest. No Gradle: Maven Central is not reachable
# here (see sdk-mobile/kotlin/README.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "test-kotlin: $*" >&2; }

mode=test
classes=()
for a in "$@"; do
  case "$a" in
    --bench) mode=bench ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) log "unknown option $a"; exit 2 ;;
    *) classes+=("$a") ;;
  esac
done

KOTLIN_HOME="$root/sdk-mobile/kotlin/node_modules/kotlin-compiler"
kotlinc="$KOTLIN_HOME/bin/kotlinc"
JAVA_LIBS=/usr/share/java
for f in "$kotlinc" "$JAVA_LIBS/jna.jar" "$JAVA_LIBS/junit4.jar" "$JAVA_LIBS/hamcrest.jar"; do
  [ -e "$f" ] || { log "missing $f: run scripts/setup.sh"; exit 1; }
done
KLIB="$KOTLIN_HOME/lib"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/kotlin"
mkdir -p "$out"
src="sdk-mobile/kotlin/src"

log "cargo build -p sdk-mobile --profile mobile"
cargo build -q -p sdk-mobile --profile mobile
if [ "$mode" = test ]; then
  log "cargo build -p threadline-collector"
  cargo build -q -p threadline-collector
fi

# A hash of the given files' names and contents plus the compiler version.
hash_of() {
  { echo "kotlinc $(cat "$KOTLIN_HOME/package.json" | grep '"version"' | head -1)"; \
    for f in "$@"; do echo "== $f"; cat "$f"; done; } | sha256sum | cut -c1-16
}

# compile <jar> <friend jar or ''> <classpath> <sources...>: into a temp file, then renamed,
# so an interrupted compile never leaves a jar that looks cached.
compile() {
  local jar="$1" friend="$2" cp="$3"
  shift 3
  local t0=$SECONDS args=()
  [ -n "$friend" ] && args+=("-Xfriend-paths=$friend")
  log "kotlinc -> ${jar#"$root"/} ($# files)"
  "$kotlinc" -nowarn -jvm-target 17 "${args[@]}" -cp "$cp" -d "$jar.tmp.jar" "$@"
  mv "$jar.tmp.jar" "$jar"
  log "compiled in $((SECONDS - t0)) s"
}

# The generated bindings (~125 KB, the slow part) and the hand-written facade are two jars, so a
# facade change does not recompile the bindings.
gen_src="$src/main/kotlin/dev/threadline/sdk/sdk_mobile.kt"
[ -f "$gen_src" ] || { log "missing $gen_src: run scripts/bindings.sh"; exit 1; }
bindings_jar="$out/bindings-$(hash_of "$gen_src").jar"
if [ ! -f "$bindings_jar" ]; then
  rm -f "$out"/bindings-*.jar
  compile "$bindings_jar" "" "$JAVA_LIBS/jna.jar" "$gen_src"
else
  log "cached ${bindings_jar#"$root"/}"
fi
mapfile -t main_src < <(find "$src/main/kotlin" -name '*.kt' ! -path "$gen_src" | LC_ALL=C sort)
main_jar="$out/main-$(hash_of "$bindings_jar" "${main_src[@]}").jar"
if [ ! -f "$main_jar" ]; then
  rm -f "$out"/main-*.jar
  compile "$main_jar" "" "$bindings_jar:$JAVA_LIBS/jna.jar" "${main_src[@]}"
else
  log "cached ${main_jar#"$root"/}"
fi

run_cp="$main_jar:$bindings_jar:$JAVA_LIBS/jna.jar:$KLIB/kotlin-stdlib.jar"
jvm_flags=(-Djna.library.path="$target/mobile" -Djava.library.path="$target/mobile"
  -Dthreadline.collector="$target/debug/threadline-collector")

if [ "$mode" = bench ]; then
  mapfile -t bench_src < <(find "$src/bench/kotlin" -name '*.kt' | LC_ALL=C sort)
  bench_jar="$out/bench-$(hash_of "$main_jar" "${bench_src[@]}").jar"
  if [ ! -f "$bench_jar" ]; then
    rm -f "$out"/bench-*.jar
    compile "$bench_jar" "$main_jar" "$run_cp" "${bench_src[@]}"
  fi
  exec java -Xss4m "${jvm_flags[@]}" -cp "$bench_jar:$run_cp" TrackBenchKt
fi

test_cp="$run_cp:$KLIB/kotlin-test.jar:$KLIB/kotlin-test-junit.jar:$JAVA_LIBS/junit4.jar:$JAVA_LIBS/hamcrest.jar"
mapfile -t test_src < <(find "$src/test/kotlin" -name '*.kt' | LC_ALL=C sort)
test_jar="$out/test-$(hash_of "$main_jar" "${test_src[@]}").jar"
if [ ! -f "$test_jar" ]; then
  rm -f "$out"/test-*.jar
  compile "$test_jar" "$main_jar" "$test_cp" "${test_src[@]}"
else
  log "cached ${test_jar#"$root"/}"
fi

# Test classes: every `class *Test` in the test sources, with its package.
if [ ${#classes[@]} -eq 0 ]; then
  mapfile -t classes < <(grep -l '^class [A-Za-z0-9]*Test\b' "${test_src[@]}" | xargs -n1 basename | sed 's/\.kt$//')
fi
fq=()
for c in "${classes[@]}"; do
  f=$(grep -l "^class $c\b" "${test_src[@]}" | head -1) || true
  [ -n "$f" ] || { log "no test class $c"; exit 2; }
  pkg=$(sed -n 's/^package \([a-zA-Z0-9_.]*\).*/\1/p' "$f" | head -1)
  fq+=("${pkg:+$pkg.}$c")
done
log "running ${fq[*]}"
t0=$SECONDS
java "${jvm_flags[@]}" -cp "$test_jar:$test_cp" org.junit.runner.JUnitCore "${fq[@]}"
log "tests passed in $((SECONDS - t0)) s"
