#!/usr/bin/env bash
# TryLock throughput over TLS against plaintext, same server build, same h2load
# flags, one run. Loopback only; about 45 s. Prints one table row per scenario.
#
#   bench/tls_vs_plaintext.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-8}
scripts/setup.sh
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 2; }
swift build -c release --product ldlm-server >/dev/null
server=.build/release/ldlm-server

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/server.key" -out "$work/server.crt" 2>/dev/null
# A TryLock request for "bench": gRPC prefix (flag 0, length 7) + field 1 "bench".
printf '\x00\x00\x00\x00\x07\x0a\x05bench' > "$work/trylock.bin"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
plain_port=$(free_port)
tls_port=$(free_port)
"$server" --listen_address "127.0.0.1:$plain_port" --log_level warn 2>>"$work/server.log" & pids+=($!)
"$server" --listen_address "127.0.0.1:$tls_port" --log_level warn \
  --tls_cert "$work/server.crt" --tls_key "$work/server.key" 2>>"$work/server.log" & pids+=($!)
for port in "$plain_port" "$tls_port"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

rate() {
  h2load -D "$duration" --warm-up-time 2 -c 16 -m "$2" -d "$work/trylock.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' "$1/ldlm.LDLM/TryLock" \
    | awk '/^finished in/ { gsub(",", "", $4); print $4 }'
}

echo "| connections x streams | plaintext req/s | TLS req/s | TLS / plaintext |"
echo "|---|---|---|---|"
for streams in 1 16; do
  plain=$(rate "http://127.0.0.1:$plain_port" "$streams")
  tls=$(rate "https://127.0.0.1:$tls_port" "$streams")
  ratio=$(python3 -c "print(f'{$tls / $plain:.2f}')")
  echo "| 16 x $streams | $plain | $tls | $ratio |"
done
