#!/usr/bin/env bash
# TryLock rate with --event_loops 1 against 2 (or the loop counts given),
# h2load 16 connections x 16 streams as bench/compare.sh drives it, runs
# interleaved so a noisy machine slows both alike; prints each run, the
# medians, and each server thread's CPU (utime+stime from /proc) over a run:
# ldlm-owner holds the locks, ldlm-loop-N only serve connections.
#
#   bench/event_loops.sh [runs] [loops...]     default: 5 runs of 1 and 2
#   LDLM_SERVER_BIN=path   the server (default .build/release/ldlm-server)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 2)
server_bin=${LDLM_SERVER_BIN:-.build/release/ldlm-server}
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '\x00\x00\x00\x00\x07\x0a\x05bench' > "$work/trylock.bin"
hz=$(getconf CLK_TCK)

# "thread-id thread-name ticks" for each thread of process $1.
thread_ticks() {
  local task stat fields
  for task in /proc/"$1"/task/*; do
    stat=$(cat "$task/stat" 2>/dev/null) || continue
    read -r -a fields <<<"${stat##*) }"
    echo "${task##*/} $(cat "$task/comm") $((fields[11] + fields[12]))"
  done | sort
}

declare -A rates
for run in $(seq "$runs"); do
  for loops in "${counts[@]}"; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$server_bin" --listen_address "127.0.0.1:$port" --log_level warn --event_loops "$loops" 2>"$work/server.log" &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    thread_ticks "$pid" >"$work/before"
    h2load -D 8 --warm-up-time 2 -c 16 -m 16 -d "$work/trylock.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://127.0.0.1:$port/ldlm.LDLM/TryLock" >"$work/h2load.txt" 2>&1 || true
    thread_ticks "$pid" >"$work/after"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rate=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$work/h2load.txt")
    rates[$loops]+="${rate:-0} "
    cpu=$(join "$work/before" "$work/after" | awk -v hz="$hz" '$5 - $3 > 0 { printf "%s %.2fs  ", $2, ($5 - $3) / hz }')
    echo "run $run, --event_loops $loops: ${rate:-no rate} req/s; $(grep '^requests:' "$work/h2load.txt" || true)"
    echo "    thread CPU over the run (10 s with warm-up): $cpu"
  done
done
for loops in "${counts[@]}"; do
  # shellcheck disable=SC2086
  median=$(printf '%s\n' ${rates[$loops]} | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
  echo "--event_loops $loops: median $median req/s over runs: ${rates[$loops]}"
done
