#!/usr/bin/env bash
# Server instructions per Lock+Unlock pair, counted by callgrind: repeatable on
# a noisy machine, unlike wall-clock rates. Runs the release server under
# valgrind once idle and once under ldlm-bench's pair load, and divides the
# difference by the pairs completed. Loopback only; about 40 s.
#
#   bench/callgrind_pair.sh [--top] [--metrics]
#
#   --top      also prints the hottest functions
#   --metrics  the server also serves --metrics_listen_address (not scraped
#              during the count: a scrape every 15 s or more costs nothing per pair)
#   LDLM_SERVER_BIN=path  profile this binary instead of building .build/release/ldlm-server
#   LDLM_SERVER_FLAGS="..."  more server flags; --event_loops 1 is always given
#                         first (a binary without the flag: LDLM_SERVER_FLAGS="" LDLM_OLD_SERVER=1)
set -euo pipefail
cd "$(dirname "$0")/.."
top=0
# One loop: the count is of the synchronous path, the same on any machine.
server_flags=()
[ -z "${LDLM_OLD_SERVER:-}" ] && server_flags+=(--event_loops 1)
# shellcheck disable=SC2206
server_flags+=(${LDLM_SERVER_FLAGS:-})
for arg in "$@"; do
  case $arg in
    --top) top=1 ;;
    --metrics) server_flags+=(--metrics_listen_address "127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')") ;;
    *) echo "usage: bench/callgrind_pair.sh [--top] [--metrics]" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install valgrind" >&2; exit 2; }
server_bin=${LDLM_SERVER_BIN:-}
if [ -z "$server_bin" ]; then
  swift build -c release --product ldlm-server >/dev/null
  server_bin=.build/release/ldlm-server
fi
swift build -c release --product ldlm-bench >/dev/null

work=$(mktemp -d)
trap '[ -n "${LDLM_KEEP_CALLGRIND:-}" ] && cp "$work"/pair.out "$LDLM_KEEP_CALLGRIND"; rm -rf "$work"' EXIT
# valgrind 3.19 cannot read the DWARF 5 the Swift toolchain emits; symbols suffice.
cp "$server_bin" "$work/ldlm-server"
strip --strip-debug "$work/ldlm-server"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Runs the server under callgrind; "$1" is the load to apply, "" for none.
profile() {
  local out=$1 load=$2
  valgrind --tool=callgrind --callgrind-out-file="$out" "$work/ldlm-server" \
    --listen_address "127.0.0.1:$port" --log_level warn ${server_flags[@]+"${server_flags[@]}"} 2>"$out.log" &
  local pid=$!
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  if [ -n "$load" ]; then
    .build/release/ldlm-bench --address "127.0.0.1:$port" --scenario pair --connections 4 \
      --duration 6 --warmup 0 --json 2>/dev/null > "$out.json"
  else
    sleep 6
  fi
  kill "$pid"
  wait "$pid" || true
}

total() { awk '/^summary:|^totals:/ { print $2; exit }' "$1"; }

profile "$work/idle.out" ""
profile "$work/pair.out" load
pairs=$(python3 -c "import json; print(json.load(open('$work/pair.out.json'))['operations'])")
idle=$(total "$work/idle.out")
loaded=$(total "$work/pair.out")
python3 -c "print(f'instructions per Lock+Unlock pair: {($loaded - $idle) / $pairs:,.0f}  ({$pairs} pairs; idle {$idle:,}, loaded {$loaded:,})')"
if [ "$top" = 1 ]; then
  callgrind_annotate --inclusive=no "$work/pair.out" 2>/dev/null | sed -n '/file:function/,$p' | head -30 | cut -c1-160
fi
