#!/usr/bin/env bash
# Server instructions per Lock+Unlock pair, counted by callgrind: repeatable on
# a noisy machine, unlike wall-clock rates. Runs the release server under
# valgrind once idle and once under ldlm-bench's pair load, and divides the
# difference by the pairs completed. Loopback only; about 40 s.
#
#   bench/callgrind_pair.sh [--top]    --top also prints the hottest functions
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install valgrind" >&2; exit 2; }
swift build -c release --product ldlm-server >/dev/null
swift build -c release --product ldlm-bench >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# valgrind 3.19 cannot read the DWARF 5 the Swift toolchain emits; symbols suffice.
cp .build/release/ldlm-server "$work/ldlm-server"
strip --strip-debug "$work/ldlm-server"
# The async main parks the main thread in libdispatch's sigsuspend on a read-only mask, which
# valgrind 3.19 writes to and crashes on; a preloaded sigsuspend passes it a copy on the stack.
cat > "$work/sigsuspend.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
int sigsuspend(const sigset_t *mask) {
  static int (*real)(const sigset_t *);
  sigset_t copy = *mask;
  if (!real) real = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
  return real(&copy);
}
EOF
cc -shared -fPIC -O2 -o "$work/sigsuspend.so" "$work/sigsuspend.c" -ldl
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Runs the server under callgrind; "$1" is the load to apply, "" for none.
profile() {
  local out=$1 load=$2
  LD_PRELOAD="$work/sigsuspend.so" valgrind --tool=callgrind --callgrind-out-file="$out" "$work/ldlm-server" \
    --listen_address "127.0.0.1:$port" --log_level warn 2>"$out.log" &
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
if [ "${1:-}" = "--top" ]; then
  callgrind_annotate --inclusive=no "$work/pair.out" 2>/dev/null | sed -n '/file:function/,$p' | head -30 | cut -c1-160
fi
