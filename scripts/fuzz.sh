#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input in sdk-core with cargo-fuzz
# (libFuzzer, nightly toolchain): the TC string decoder, the queue
# snapshot restore and the decision conditions (JSON Logic: parse, compile,
# evaluate). Not part of CI; run it after touching any of them.
#
#   scripts/fuzz.sh [seconds-per-target, default 180] [target...]
#
# Installs cargo-fuzz when missing. Corpora persist in fuzz/corpus/<target>
# (seeded on first run), so later runs start where earlier ones stopped.
# Exits non-zero when a target crashes, and prints where its input is.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "fuzz: $*" >&2; }

secs="${1:-180}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tcf_decode snapshot_restore logic_eval artifact_load)
case "$secs" in '' | *[!0-9]*) log "seconds must be a whole number, got '$secs'"; exit 2 ;; esac

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  log "the nightly toolchain is missing (cargo-fuzz needs it): rustup toolchain install nightly"
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (takes ~1 min)"
  cargo install -q cargo-fuzz
fi

cd "$root/fuzz"

# --- seed corpora --------------------------------------------------------------
seed_tcf() {
  local dir=corpus/tcf_decode
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || return 0
  # The IAB specification's example and strings the IAB encoder wrote: far
  # better starting points than random bytes for a base64 bit format.
  printf '%s' 'CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA.argAC0gAAAAAAAAAAAA' >"$dir/iab-example"
  printf '%s' 'COxSKBCOxSKCCBcABCENAgCMAPzAAEPAAAqIDaQBQAMgAgABqAR0A2gDaQAwAMgAgANoAAA' >"$dir/iab-example-2"
  if command -v node >/dev/null && [ -d "$root/tests/node_modules/@iabtechlabtcf/core" ]; then
    (cd "$root/tests" && node tcf/generate.mjs 7 300 2>/dev/null) | node -e '
      const fs = require("fs");
      const lines = fs.readFileSync(0, "utf8").split("\n").filter(Boolean);
      lines.forEach((l, i) => fs.writeFileSync(`${process.argv[1]}/iab-${i}`, JSON.parse(l).tc));
    ' "$dir" || log "could not seed from tests/tcf/generate.mjs; starting from the two examples"
  else
    log "node or tests/node_modules missing (scripts/setup.sh); seeding tcf_decode with two examples only"
  fi
}

seed_snapshot() {
  local dir=corpus/snapshot_restore
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || return 0
  local ev='{"type":"track","event":"Order Completed","properties":{"total":12.5,"items":[{"sku":"A-1"}]},"messageId":"0b1e6c1e-3f5a-4d2b-9a7e-2b8f0c3d4e5f","anonymousId":"a","timestamp":"2026-03-01T00:00:00.000Z","context":{"consent":{"analytics":"granted"}}}'
  printf '%s' "{\"v\":1,\"events\":[{\"id\":\"0b1e6c1e-3f5a-4d2b-9a7e-2b8f0c3d4e5f\",\"t\":1772323200000,\"a\":0,\"e\":$ev}]}" >"$dir/one-event"
  printf '%s' "{\"v\":1,\"backoff\":{\"failures\":3,\"until\":1772323260000,\"retryAfterUntil\":1772323290000},\"events\":[{\"id\":\"x\",\"t\":5,\"a\":2,\"e\":{}},{\"id\":\"y\",\"t\":6,\"e\":[1,\"\\u00e9\"]}]}" >"$dir/backoff"
  printf '%s' '{"v":1,"events":[]}' >"$dir/empty"
  printf '%s' '{"v":2,"events":[]}' >"$dir/future-version"
}

seed_logic() {
  local dir=corpus/logic_eval
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || return 0
  # Input: condition JSON, a NUL byte, data JSON.
  printf '%s\0%s' '{"and":[{">=":[{"count":["product_viewed","7d",{"productId":{"var":"page.productId"}}]},2]},{"==":[{"var":"profile.plan"},"pro"]},{"!":{"inAudience":"purchasers"}}]}' \
    '{"profile":{"plan":"pro"},"page":{"productId":"slacks-01"}}' >"$dir/decision"
  printf '%s\0%s' '{">":[{"daysSince":{"lastSeen":["purchase"]}},30]}' '{}' >"$dir/days-since"
  printf '%s\0%s' '{"try":[{"reduce":[{"val":"xs"},{"+":[{"val":"current"},{"val":"accumulator"}]},0]},{"val":"type"}]}' \
    '{"xs":[1,"2",null,[3]]}' >"$dir/try-reduce"
  printf '%s\0%s' '{"map":[{"val":"xs"},{"+":[{"val":[[1],"index"]},{"val":[[2],"k"]}]}]}' '{"xs":[1,2],"k":5}' >"$dir/scopes"
  # Every case of the community suites, when the shared test data is there.
  local suites="$root/../shared/testdata/jsonlogic"
  if command -v node >/dev/null && [ -f "$suites/index.json" ]; then
    node -e '
      const fs = require("fs"), path = require("path");
      const [dir, out] = process.argv.slice(1);
      let n = 0;
      for (const f of JSON.parse(fs.readFileSync(path.join(dir, "index.json"), "utf8")))
        for (const c of JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")))
          if (typeof c === "object")
            fs.writeFileSync(path.join(out, `suite-${n++}`), JSON.stringify(c.rule) + "\0" + JSON.stringify(c.data ?? null));
    ' "$suites" "$dir" || log "could not seed logic_eval from the JSON Logic suites; starting from four rules"
  else
    log "node or ../shared/testdata/jsonlogic missing; seeding logic_eval with four rules only"
  fi
}

seed_tcf
seed_snapshot
seed_logic

# --- run -------------------------------------------------------------------------
# Builds land in fuzz/target (sanitizer builds share nothing with the
# workspace's), whatever CARGO_TARGET_DIR says.
unset CARGO_TARGET_DIR
log "building targets (nightly, address sanitizer)"
cargo +nightly fuzz build >&2

failed=()
for t in "${targets[@]}"; do
  log "running $t for ${secs}s"
  out="$(mktemp)"
  # -timeout: one input running over 10 s counts as a crash (a hang);
  # -rss_limit_mb: so does one needing more than 2 GiB.
  if cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    2>"$out"; then
    runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$out" | tail -1 || true)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out" | grep -o '[0-9]*$' || true)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$out" | tail -1 || true)
    log "$t: ok (${runs:-${execs:-?} runs}; $cov; corpus $(ls "corpus/$t" | wc -l) inputs)"
  else
    tail -n 60 "$out" >&2
    log "$t: CRASHED. Inputs that crashed it:"
    ls -1t "$root/fuzz/artifacts/$t/" 2>/dev/null | head -5 | sed "s|^|  $root/fuzz/artifacts/$t/|" >&2
    log "reproduce with: (cd fuzz && cargo +nightly fuzz run $t artifacts/$t/<file>)"
    failed+=("$t")
  fi
  rm -f "$out"
done

if [ ${#failed[@]} -gt 0 ]; then
  log "crashed: ${failed[*]}"
  exit 1
fi
log "ok: ${targets[*]} ran ${secs}s each without a crash"
