#!/usr/bin/env bash
# The demo: builds the SDK and the reference collector, then serves the demo
# shop (examples/web-demo) and the npm package from the collector.
#
#   scripts/demo.sh [--port N]   serve on http://127.0.0.1:N/ (default 8787) until Ctrl-C
#   scripts/demo.sh --check      scripted visit in headless Chromium; exit 0 if every
#                                tracked event reached the collector, 1 otherwise
#
# Works from any directory, can be run again and again, and leaves no
# process behind: the collector stops when this script ends, however it ends.
set -euo pipefail

usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

port=8787
check=0
while [ $# -gt 0 ]; do
  case "$1" in
    --port) [ $# -ge 2 ] || { echo "demo: --port needs a value" >&2; exit 2; }; port="$2"; shift 2 ;;
    --port=*) port="${1#--port=}"; shift ;;
    --check) check=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$port" in
  ''|*[!0-9]*) echo "demo: --port must be a number, got '$port'" >&2; exit 2 ;;
esac
[ "$check" -eq 1 ] && port=0 # the check picks a free port

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
log() { echo "demo: $*" >&2; }

# --- build -------------------------------------------------------------------
log "setup (skips whatever is installed already)"
scripts/setup.sh
log "building the npm package"
npm/scripts/build.sh
log "building the collector"
cargo build -q -p threadline-collector
collector="${CARGO_TARGET_DIR:-$root/target}/debug/threadline-collector"

# --- run the collector ---------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/threadline-demo.XXXXXX")"
pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # give it 5 s to stop cleanly, then insist
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# A fresh profile secret and hub token per run: the demo stands in for the shop's
# back end (`--demo-tokens` issues user tokens to anyone, which only a demo may do).
random_hex() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
hub_token="$(random_hex)"
: >"$tmp/stdout" # exists before the first poll below, however late the collector starts
THREADLINE_PROFILE_SECRET="$(random_hex)" "$collector" --port "$port" --fresh --db "$tmp/threadline-demo.sqlite" \
  --static-dir examples/web-demo --npm-dir npm \
  --profile-rules examples/web-demo/rules/shop.json --demo-tokens --hub-token "$hub_token" >"$tmp/stdout" &
pid=$!

url=""
for _ in $(seq 300); do # up to 30 s
  url="$(sed -n 's/^threadline-collector listening on \(http:[^ ]*\)$/\1/p' "$tmp/stdout")"
  [ -n "$url" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || true
    pid=""
    log "the collector did not start (port $port in use? try --port N)"
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  log "the collector printed no URL within 30 s"
  exit 1
fi

# --- check or serve -----------------------------------------------------------------
if [ "$check" -eq 1 ]; then
  log "collector at $url; running the scripted visit"
  status=0
  node examples/web-demo/check.mjs "$url" || status=$?
  exit "$status"
fi

bold="" reset=""
if [ -t 1 ]; then bold=$'\e[1m'; reset=$'\e[0m'; fi
cat <<EOF

  ${bold}Threadline demo: $url/${reset}

  Open it in a browser: browse, add the slacks to the cart, sign in, check out,
  and watch the live panel. "Simulate outage" makes the collector fail every
  batch; end it to watch the retries deliver. Ctrl-C stops the demo.

  Activity hub (one person across devices): $url/hub
  hub token: $hub_token
  Sign in with the same user id in a second browser (or a private window): the
  shop there learns what the first one did (the slacks discount goes after an order).

EOF
# `wait` returns as soon as a trapped signal arrives; the traps then stop the collector.
status=0
wait "$pid" || status=$?
pid=""
log "the collector stopped (status $status)"
exit "$status"
