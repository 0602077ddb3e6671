#!/usr/bin/env bash
# Side by side, one run, same box: our server against nghttpd (the HTTP/2
# ceiling, driven by the same h2load flags), against Redis locking (SET NX PX
# + a Lua compare-and-delete by EVALSHA) and, when its binary is given, against
# go-ldlm's server; plus the contended hand-off and fairness from ldlm-bench, and
# our server on two event loops against one. Every server's CPU (user + system,
# from /proc/PID/stat) is read over each run, so a client sharing the machine
# does not enter the per-call figures. Loopback only; about 5 minutes after the
# build (8 s runs). Prints a markdown table and writes it, with the machine
# facts and the exact commands, between the compare.sh markers in BENCHMARKS.md.
#
#   bench/compare.sh [seconds-per-run] [--no-write] [--metrics]
#
#   seconds-per-run  measured seconds per run (default 8; 2 s warm-up on top)
#   --no-write       print only, leave BENCHMARKS.md alone
#   --metrics        our servers also serve --metrics_listen_address (scraped
#                    once at the end, to show the counts kept up)
#   LDLM_SERVER_BIN=path  use this ldlm-server instead of building .build/release/ldlm-server
#   LDLM_BENCH=path       use this ldlm-bench instead of building .build/release/ldlm-bench
#   GO_LDLM_SERVER=path   also measure go-ldlm's ldlm-server (a column of its own)
#
# Our servers run with --event_loops 1 except the one of the scaling rows
# (--event_loops 2), so the per-call rows compare one core with one core.
#
# Installs nghttp2-client, nghttp2-server, redis-server and redis-tools from
# Debian when missing. Starts ldlm-server, nghttpd, two redis-servers and
# go-ldlm's server on free 127.0.0.1 ports and stops exactly those processes on
# exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

duration=8
write=1
metrics=0
for arg in "$@"; do
  case $arg in
    --no-write) write=0 ;;
    --metrics) metrics=1 ;;
    ''|*[!0-9]*) echo "usage: bench/compare.sh [seconds-per-run] [--no-write] [--metrics]" >&2; exit 2 ;;
    *) duration=$arg ;;
  esac
done
warmup=2
connections=16

log() { echo "compare: $*" >&2; }

# --- dependencies -----------------------------------------------------------
scripts/setup.sh
missing=()
need() { # command package
  command -v "$1" >/dev/null 2>&1 && dpkg -s "$2" >/dev/null 2>&1 && return
  case " ${missing[*]-} " in *" $2 "*) ;; *) missing+=("$2") ;; esac
}
need h2load nghttp2-client
need nghttp nghttp2-client
need nghttpd nghttp2-server
need redis-server redis-server
need redis-benchmark redis-tools
need redis-cli redis-tools
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- build ------------------------------------------------------------------
# `swift build` keeps only the last --product, so one product per call.
server=${LDLM_SERVER_BIN:-}
if [ -z "$server" ]; then
  log "building release"
  swift build -c release --product ldlm-server >&2
  server=.build/release/ldlm-server
fi
go_server=${GO_LDLM_SERVER:-}
if [ -n "$go_server" ] && [ ! -x "$go_server" ]; then
  echo "compare: GO_LDLM_SERVER=$go_server is not an executable" >&2
  exit 2
fi
bench=${LDLM_BENCH:-}
bench_problem=""
if [ -z "$bench" ]; then
  bench=.build/release/ldlm-bench
  if ! swift build -c release --product ldlm-bench >&2; then
    bench_problem="ldlm-bench did not build"
    log "$bench_problem: its rows are left empty"
  fi
fi

# --- processes we start -----------------------------------------------------
work=$(mktemp -d)
# The fsync variant writes its AOF next to the build, not in a possibly tmpfs /tmp.
mkdir -p .build
aof_dir=$(mktemp -d "$repo/.build/compare-aof.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work" "$aof_dir"
}
trap cleanup EXIT

# Each command that matters is printed as run and kept for BENCHMARKS.md, with
# the temporary directories written as $work and $aof_dir.
commands=()
quote() {
  local out=() a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then out+=("$a")
    elif [[ $a != *\'* ]]; then out+=("'$a'")
    elif [[ $a != *[\"\$\`\\]* ]]; then out+=("\"$a\"")
    else out+=("$(printf %q "$a")"); fi
  done
  local IFS=' '
  quoted="${out[*]}"
}
record_line() {
  local line=$1
  line=${line//"$aof_dir"/'$aof_dir'}
  line=${line//"$work"/'$work'}
  line=${line//"$repo/"/}
  commands+=("$line")
  echo "+ $line" >&2
}
record() { quote "$@"; record_line "$quoted"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port name log
  for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done
  log "$2 did not listen on 127.0.0.1:$1"; tail -5 "$3" >&2 || true; exit 1
}

ldlm_port=$(free_port); nghttpd_port=$(free_port); redis_port=$(free_port); aof_port=$(free_port)
durable_port=$(free_port); two_loops_port=$(free_port); go_port=$(free_port)
metrics_flags=() durable_metrics_flags=()
if [ "$metrics" = 1 ]; then
  metrics_port=$(free_port); durable_metrics_port=$(free_port)
  metrics_flags=(--metrics_listen_address "127.0.0.1:$metrics_port")
  durable_metrics_flags=(--metrics_listen_address "127.0.0.1:$durable_metrics_port")
fi

# A TryLock request for "bench": gRPC prefix (flag 0, length 7) + field 1 "bench".
record_line "printf '\\x00\\x00\\x00\\x00\\x07\\x0a\\x05bench' > \$work/trylock.bin"
printf '\x00\x00\x00\x00\x07\x0a\x05bench' > "$work/trylock.bin"
# nghttpd serves an empty file at the same path, so the same h2load URL gets 200s.
record_line "mkdir -p \$work/docroot/ldlm.LDLM && : > \$work/docroot/ldlm.LDLM/TryLock"
mkdir -p "$work/docroot/ldlm.LDLM" && : > "$work/docroot/ldlm.LDLM/TryLock"

notes=()

# A server older than --event_loops runs on its one loop, and the scaling rows stay empty.
one_loop=() two_loops=()
# Read whole first: grep -q stopping early would fail the pipe under pipefail.
server_help=$("$server" --help 2>&1 || true)
if grep -q -- --event_loops <<<"$server_help"; then
  one_loop=(--event_loops 1) two_loops=(--event_loops 2)
else
  notes+=("$server has no --event_loops: it runs on one event loop and the scaling rows are not measured.")
fi

# Each process we start: its PID by name, for the CPU readings.
declare -A pid_of
start() { # name log command... (records the command; stdout and stderr to log)
  local name=$1 logfile=$2; shift 2
  record "$@"; "$@" >>"$logfile" 2>&1 & pids+=($!); pid_of[$name]=$!
}
start ours "$work/ldlm-server.log" "$server" --listen_address "127.0.0.1:$ldlm_port" --log_level warn ${one_loop[@]+"${one_loop[@]}"} \
  ${metrics_flags[@]+"${metrics_flags[@]}"}
# The durable server's log sits next to Redis's AOF, on the same disk.
start durable "$work/ldlm-server-durable.log" "$server" --listen_address "127.0.0.1:$durable_port" --log_level warn \
  ${one_loop[@]+"${one_loop[@]}"} --state_file "$aof_dir/ldlm.state" ${durable_metrics_flags[@]+"${durable_metrics_flags[@]}"}
if [ ${#two_loops[@]} -gt 0 ]; then
  start two_loops "$work/ldlm-server-2loops.log" "$server" --listen_address "127.0.0.1:$two_loops_port" --log_level warn "${two_loops[@]}"
fi
start nghttpd "$work/nghttpd.log" nghttpd --no-tls --address 127.0.0.1 -d "$work/docroot" "$nghttpd_port"
start redis "$work/redis.out" redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
  --dir "$work" --logfile "$work/redis.log"
start redis_aof "$work/redis-aof.out" redis-server --bind 127.0.0.1 --port "$aof_port" --save '' --appendonly yes --appendfsync always \
  --auto-aof-rewrite-percentage 0 --dir "$aof_dir" --logfile "$work/redis-aof.log"
if [ -n "$go_server" ]; then
  start go "$work/go-ldlm.log" "$go_server" --listen_address "127.0.0.1:$go_port" --log_level warn
fi
wait_port "$ldlm_port" ldlm-server "$work/ldlm-server.log"
wait_port "$durable_port" "ldlm-server (state file)" "$work/ldlm-server-durable.log"
[ ${#two_loops[@]} -eq 0 ] || wait_port "$two_loops_port" "ldlm-server (2 event loops)" "$work/ldlm-server-2loops.log"
wait_port "$nghttpd_port" nghttpd "$work/nghttpd.log"
wait_port "$redis_port" redis-server "$work/redis.log"
wait_port "$aof_port" "redis-server (AOF)" "$work/redis-aof.log"
[ -z "$go_server" ] || wait_port "$go_port" "go-ldlm server" "$work/go-ldlm.log"
for port in "$redis_port" "$aof_port"; do
  for _ in $(seq 50); do [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
done

# --- CPU readings from /proc ------------------------------------------------
ticks_per_second=$(getconf CLK_TCK)
# User + system clock ticks of a process (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# "tid ticks name" for each thread of a process.
thread_ticks() {
  local stat tid
  for stat in /proc/"$1"/task/*/stat; do
    tid=${stat%/stat}; tid=${tid##*/}
    awk -v tid="$tid" -v name="$(cat "/proc/$1/task/$tid/comm")" '{ sub(/^.*\) /, ""); print tid, $12 + $13, name }' "$stat"
  done
}
# Runs a command while reading a server's CPU from `warmup` seconds after its
# start to its end (the measured window of h2load and redis-benchmark runs);
# REPLY is the CPU seconds used in that window.
with_server_cpu() { # pid warmup command...
  local pid=$1 delay=$2; shift 2
  local mark="$work/cpu-mark.$RANDOM"
  ( sleep "$delay"; cpu_ticks "$pid" >"$mark" ) &
  local marker=$!
  "$@" || true
  wait "$marker" 2>/dev/null || true
  local end; end=$(cpu_ticks "$pid")
  REPLY=$(python3 -c "print(($end - $(cat "$mark")) / $ticks_per_second)")
  rm -f "$mark"
}

# --- sanity: both HTTP/2 servers answer the request h2load will send ---------
cmd=(nghttp -v -d "$work/trylock.bin" -H 'content-type: application/grpc' -H 'te: trailers'
  "http://127.0.0.1:$ldlm_port/ldlm.LDLM/TryLock")
record "${cmd[@]}"
"${cmd[@]}" >"$work/nghttp-check.txt" 2>&1 || true
if ! grep -aq 'grpc-status: 0' "$work/nghttp-check.txt"; then
  notes+=("Our server did not answer the h2load TryLock body with grpc-status 0 (checked with nghttp); its h2load rates count HTTP 200s only.")
fi
h2_method=POST
h2_body=(-d "$work/trylock.bin")
cmd=(h2load -n 32 -c 1 -m 1 "${h2_body[@]}" -H 'content-type: application/grpc' -H 'te: trailers'
  "http://127.0.0.1:$nghttpd_port/ldlm.LDLM/TryLock")
record "${cmd[@]}"
"${cmd[@]}" >"$work/h2load-probe.txt" 2>&1 || true
if grep -q '^status codes: 32 2xx' "$work/h2load-probe.txt"; then
  notes+=("nghttpd answers the POST with the gRPC body (200, empty file), so both sides run identical h2load flags.")
else
  # nghttpd would not take the POST: the closest equivalent is the same request without a body.
  h2_method=GET
  notes+=("nghttpd refused the POST; its rate is measured with the same h2load flags minus -d (GET, no body), so the ratio flatters us.")
fi

# --- 1. TryLock RPC rate against the HTTP/2 ceiling -------------------------
# REPLY=req/s or ""; H2_CPU=the server's CPU µs per request or "".
h2rate() { # label server-name port streams method [run-tag]
  local label=$1 name=$2 url="http://127.0.0.1:$3" streams=$4 method=$5 out="$work/h2load-$1-$4${6:+-$6}.txt"
  local body=("${h2_body[@]}")
  [ "$method" = POST ] || body=()
  local cmd=(h2load -D "$duration" --warm-up-time "$warmup" -c "$connections" -m "$streams" "${body[@]}"
    -H 'content-type: application/grpc' -H 'te: trailers' "$url/ldlm.LDLM/TryLock")
  [ -n "${quiet:-}" ] || record "${cmd[@]}"
  with_server_cpu "${pid_of[$name]}" "$warmup" timeout -k 5 $((duration + warmup + 30)) "${cmd[@]}" >"$out" 2>&1
  local cpu=$REPLY
  REPLY=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$out")
  local requests codes done_requests
  requests=$(grep '^requests:' "$out" || true)
  codes=$(grep '^status codes:' "$out" || true)
  done_requests=$(awk '/^requests:/ { print $8 }' "$out")
  H2_CPU=$(python3 -c "print(f'{$cpu / ${done_requests:-0} * 1e6:.2f}' if ${done_requests:-0} else '')")
  log "$label ${connections}x$streams: ${REPLY:-no rate} req/s, server CPU ${H2_CPU:-?} µs/request; $requests; $codes"
  if [ -z "$REPLY" ] || ! grep -q ' 0 failed, 0 errored' <<<"$requests" || ! grep -q ', 0 3xx, 0 4xx, 0 5xx' <<<"$codes"; then
    notes+=("h2load against $label at ${connections}x$streams: ${requests#requests: }; ${codes#status codes: }.")
  fi
}
h2rate ours ours "$ldlm_port" 1 POST; ours_t1=$REPLY ours_t1_cpu=$H2_CPU
h2rate nghttpd nghttpd "$nghttpd_port" 1 "$h2_method"; ng_t1=$REPLY ng_t1_cpu=$H2_CPU
h2rate ours ours "$ldlm_port" 16 POST; ours_t16=$REPLY ours_t16_cpu=$H2_CPU
h2rate nghttpd nghttpd "$nghttpd_port" 16 "$h2_method"; ng_t16=$REPLY ng_t16_cpu=$H2_CPU
go_t1="" go_t16="" go_t1_cpu="" go_t16_cpu=""
if [ -n "$go_server" ]; then
  h2rate go-ldlm go "$go_port" 1 POST; go_t1=$REPLY go_t1_cpu=$H2_CPU
  h2rate go-ldlm go "$go_port" 16 POST; go_t16=$REPLY go_t16_cpu=$H2_CPU
fi

# --- scaling: two event loops against one, interleaved ----------------------
# Five runs each, alternating, so drifts in the machine's load hit both alike;
# the per-thread CPU of each server is summed over its runs.
scaling_runs=5
loops1_rates=() loops2_rates=() loops1_requests=0 loops2_requests=0
if [ ${#two_loops[@]} -gt 0 ]; then
  thread_ticks "${pid_of[ours]}" >"$work/threads-loops1.before"
  thread_ticks "${pid_of[two_loops]}" >"$work/threads-loops2.before"
  for run in $(seq "$scaling_runs"); do
    [ "$run" -eq 1 ] && quiet= || quiet=1
    h2rate "ours, 1 event loop" ours "$ldlm_port" 16 POST "scaling-$run"; loops1_rates+=("${REPLY:-0}")
    loops1_requests=$((loops1_requests + $(awk '/^requests:/ { print $8 }' "$work/h2load-ours, 1 event loop-16-scaling-$run.txt")))
    h2rate "ours, 2 event loops" two_loops "$two_loops_port" 16 POST "scaling-$run"; loops2_rates+=("${REPLY:-0}")
    loops2_requests=$((loops2_requests + $(awk '/^requests:/ { print $8 }' "$work/h2load-ours, 2 event loops-16-scaling-$run.txt")))
  done
  quiet=
  thread_ticks "${pid_of[ours]}" >"$work/threads-loops1.after"
  thread_ticks "${pid_of[two_loops]}" >"$work/threads-loops2.after"
  record_line "# the two h2load commands above run $scaling_runs times each, alternating (1 loop, 2 loops); /proc/PID/task/*/stat read before and after"
fi

# --- ldlm-bench runs (pair, contended) --------------------------------------
bench_run() { # scenario server-name port [tag] -> REPLY=json file or ""
  REPLY=""
  [ -z "$bench_problem" ] || return 0
  local out="$work/bench-$1${4:+-$4}.json"
  local cmd=("$bench" --address "127.0.0.1:$3" --scenario "$1" --connections "$connections"
    --streams 1 --duration "$duration" --warmup "$warmup" --server-pid "${pid_of[$2]}" --json)
  record "${cmd[@]}"
  local rc=0
  timeout -k 5 $((duration + warmup + 60)) "${cmd[@]}" >"$out" 2>"$work/bench-$1${4:+-$4}.err" || rc=$?
  if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null; then
    REPLY=$out
    log "ldlm-bench $1: $(cat "$out")"
    [ "$rc" -eq 0 ] || log "ldlm-bench $1 exited $rc (errors are in its JSON)"
  else
    log "ldlm-bench $1 failed (exit $rc):"; tail -5 "$work/bench-$1${4:+-$4}.err" >&2 || true
    notes+=("ldlm-bench --scenario $1 against $2 printed no JSON (exit $rc): $(tail -1 "$work/bench-$1${4:+-$4}.err" 2>/dev/null | cut -c1-200)")
  fi
}
bench_run pair ours "$ldlm_port"; pair_json=$REPLY
bench_run pair durable "$durable_port" durable; durable_pair_json=$REPLY
go_pair_json=""
if [ -n "$go_server" ]; then
  bench_run pair go "$go_port" go; go_pair_json=$REPLY
fi

# --- 2. Redis lock+unlock pairs ---------------------------------------------
lua="if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end"
rcli() { redis-cli -h 127.0.0.1 -p "$@"; }
# REPLY=rps or ""; RB_CPU=the server's CPU seconds over the run.
redis_bench() { # server-name port n keyspace args...; recorded unless $quiet
  local name=$1 port=$2 n=$3 keys=$4; shift 4
  local cmd=(redis-benchmark -h 127.0.0.1 -p "$port" -c "$connections" -n "$n" -r "$keys" --csv "$@")
  [ -n "${quiet:-}" ] || record "${cmd[@]}"
  with_server_cpu "${pid_of[$name]}" 0 timeout -k 5 $((duration * 6 + 60)) "${cmd[@]}" >"$work/rb.csv" 2>"$work/rb.err"
  RB_CPU=$REPLY
  REPLY=$(python3 -c 'import csv,sys; print(float(list(csv.reader(open(sys.argv[1])))[1][1]))' "$work/rb.csv" 2>/dev/null || true)
  if [ -z "$REPLY" ] || [ -s "$work/rb.err" ]; then
    log "redis-benchmark on $port: ${REPLY:-no rate}; $(head -c 300 "$work/rb.err")"
  fi
}
rcall() { # port args...: a redis-cli call, recorded unless $quiet
  local port=$1; shift
  [ -n "${quiet:-}" ] || record redis-cli -h 127.0.0.1 -p "$port" "$@"
  rcli "$port" "$@"
}
# Redis runs in chunks of $chunk calls with FLUSHALL between, so its keyspace
# stays as small as a lock table under this load would be (a table of a million
# keys costs it ~15%). A chunk: SET NX on fresh random keys out of 1e8 (nearly
# every call takes a lock); then the compare-and-delete on keys that exist with
# value v, so it really deletes (and, with appendfsync always, really fsyncs):
# 4 x chunk keys prefilled, chunk drawn at random, ~88% found.
chunk=25000
record_line "python3 -c '<RESP for SET lock:%012d v PX 300000, 0..$((4 * chunk - 1))>' > \$work/prefill.resp"
python3 -c '
import sys
with open(sys.argv[1], "wb") as out:
    for i in range(int(sys.argv[2])):
        key = b"lock:%012d" % i
        out.write(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n$2\r\nPX\r\n$6\r\n300000\r\n" % (len(key), key))
' "$work/prefill.resp" $((4 * chunk))
redis_pair() { # label server-name port -> sets redis_<label>_{set,eval,note,cpu}
  local label=$1 name=$2 port=$3 chunks i before after taken=0 deleted=0 set_rates=() eval_rates=() set_cpu=0 eval_cpu=0
  local set_cmd=(SET lock:__rand_int__ v NX PX 30000)
  # Loaded once (FLUSHALL keeps scripts), called by its SHA as a client library would.
  record redis-cli -h 127.0.0.1 -p "$port" script load "$lua"
  local sha; sha=$(rcli "$port" script load "$lua")
  local eval_cmd=(EVALSHA "$sha" 1 lock:__rand_int__ v)
  log "redis ($label): sizing the runs"
  rcall "$port" flushall >/dev/null
  redis_bench "$name" "$port" 3000 100000000 "${set_cmd[@]}"
  chunks=$(python3 -c "import math; print(max(1, math.ceil(float('${REPLY:-0}') * $duration / $chunk)))")
  record_line "# the next 6 commands run $chunks time(s) (${label})"
  for i in $(seq "$chunks"); do
    [ "$i" -eq 1 ] && quiet= || quiet=1
    rcall "$port" flushall >/dev/null
    redis_bench "$name" "$port" "$chunk" 100000000 "${set_cmd[@]}"; set_rates+=("${REPLY:-0}") set_cpu=$(python3 -c "print($set_cpu + $RB_CPU)")
    taken=$((taken + $(rcli "$port" dbsize)))
    rcall "$port" flushall >/dev/null
    [ -n "$quiet" ] || record_line "redis-cli -h 127.0.0.1 -p $port --pipe < \$work/prefill.resp"
    rcli "$port" --pipe <"$work/prefill.resp" >"$work/pipe.log" 2>&1
    before=$(rcli "$port" dbsize)
    redis_bench "$name" "$port" "$chunk" $((4 * chunk)) "${eval_cmd[@]}"; eval_rates+=("${REPLY:-0}") eval_cpu=$(python3 -c "print($eval_cpu + $RB_CPU)")
    after=$(rcli "$port" dbsize)
    deleted=$((deleted + before - after))
  done
  quiet=
  rcli "$port" flushall >/dev/null
  # Equal chunks: the rate over all of them is the harmonic mean of the chunk rates.
  hmean() { python3 -c 'import sys; r=[float(x) for x in sys.argv[1:]]; print("" if 0 in r else len(r) / sum(1 / x for x in r))' "$@"; }
  printf -v "redis_${label}_set" '%s' "$(hmean "${set_rates[@]}")"
  printf -v "redis_${label}_eval" '%s' "$(hmean "${eval_rates[@]}")"
  local total=$((chunks * chunk))
  # A pair is one SET and one compare-and-delete: the CPU of each per call, added.
  printf -v "redis_${label}_cpu" '%s' "$(python3 -c "print(f'{($set_cpu + $eval_cpu) / $total * 1e6:.2f}')")"
  printf -v "redis_${label}_note" '%s' "$label: $chunks chunk(s) of $chunk calls; SET NX took a lock in $(python3 -c "print(f'{100*$taken/$total:.1f}% of {$total:,} calls; the EVALSHA deleted in {100*$deleted/$total:.1f}% of {$total:,}')") (chunk rates SET ${set_rates[*]%.*}; EVALSHA ${eval_rates[*]%.*})"
  local set_rate=redis_${label}_set eval_rate=redis_${label}_eval
  local cpu=redis_${label}_cpu
  log "redis ($label): SET ${!set_rate:-?}/s, EVALSHA ${!eval_rate:-?}/s over $chunks chunks; server CPU ${!cpu} µs per pair"
}
redis_pair memory redis "$redis_port"
redis_pair fsync redis_aof "$aof_port"

# --- 4. contended hand-off and fairness -------------------------------------
bench_run contended ours "$ldlm_port"; contended_json=$REPLY
go_contended_json=""
if [ -n "$go_server" ]; then
  bench_run contended go "$go_port" go; go_contended_json=$REPLY
fi

# --- metrics, when on: one scrape, to show the counts kept up ----------------
if [ "$metrics" = 1 ]; then
  for port in "$metrics_port" "$durable_metrics_port"; do
    counted=$(python3 -c '
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10).read().decode()
print(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("ldlm_rpcs_total{")))' "$port")
    record_line "curl -s http://127.0.0.1:$port/metrics"
    notes+=("metrics on: the scrape of 127.0.0.1:$port counted $(printf '%.0f' "$counted") RPCs in ldlm_rpcs_total")
  done
fi

# --- the table --------------------------------------------------------------
if [ -s "$work/ldlm-server.log" ]; then
  notes+=("ldlm-server logged $(wc -l <"$work/ldlm-server.log") line(s) at warn level, first: $(head -1 "$work/ldlm-server.log" | cut -c1-200)")
fi
facts_cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
[ -n "$facts_cpu" ] || facts_cpu=$(uname -m)
export CMP_DURATION=$duration CMP_WARMUP=$warmup CMP_CONNECTIONS=$connections CMP_H2_METHOD=$h2_method \
  CMP_OURS_T1=$ours_t1 CMP_NG_T1=$ng_t1 CMP_OURS_T16=$ours_t16 CMP_NG_T16=$ng_t16 \
  CMP_OURS_T1_CPU=$ours_t1_cpu CMP_NG_T1_CPU=$ng_t1_cpu CMP_OURS_T16_CPU=$ours_t16_cpu CMP_NG_T16_CPU=$ng_t16_cpu \
  CMP_PAIR_JSON=$pair_json CMP_DURABLE_PAIR_JSON=$durable_pair_json CMP_CONTENDED_JSON=$contended_json CMP_BENCH_PROBLEM=$bench_problem \
  CMP_R_MEM_SET=${redis_memory_set:-} CMP_R_MEM_EVAL=${redis_memory_eval:-} \
  CMP_R_FS_SET=${redis_fsync_set:-} CMP_R_FS_EVAL=${redis_fsync_eval:-} \
  CMP_R_MEM_NOTE=${redis_memory_note:-} CMP_R_FS_NOTE=${redis_fsync_note:-} \
  CMP_R_MEM_CPU=${redis_memory_cpu:-} CMP_R_FS_CPU=${redis_fsync_cpu:-} \
  CMP_GO=$go_server CMP_GO_T1=$go_t1 CMP_GO_T16=$go_t16 CMP_GO_T1_CPU=$go_t1_cpu CMP_GO_T16_CPU=$go_t16_cpu \
  CMP_GO_PAIR_JSON=$go_pair_json CMP_GO_CONTENDED_JSON=$go_contended_json \
  CMP_LOOPS1_RATES="${loops1_rates[*]-}" CMP_LOOPS2_RATES="${loops2_rates[*]-}" \
  CMP_LOOPS1_REQUESTS=$loops1_requests CMP_LOOPS2_REQUESTS=$loops2_requests CMP_THREADS_DIR=$work \
  CMP_WRITE=$write CMP_FILE="$repo/BENCHMARKS.md"
CMP_NOTES=$(printf '%s\n' "${notes[@]+"${notes[@]}"}"); export CMP_NOTES
CMP_COMMANDS=$(printf '%s\n' "${commands[@]}"); export CMP_COMMANDS
CMP_FACTS=$(
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPUs, $facts_cpu, $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
  echo "- kernel: $(uname -sr); OS: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- swift: $(swift --version 2>&1 | grep -m1 -i 'swift version' || true)"
  echo "- $(h2load --version 2>&1 | head -1) (h2load), $(nghttpd --version 2>&1 | head -1) (nghttpd, 1 worker)"
  echo "- $(redis-server --version | head -1)"
  echo "- $(redis-benchmark --version 2>&1 | head -1) (redis-benchmark)"
  echo "- redis AOF directory filesystem: $(stat -f -c %T "$aof_dir")"
); export CMP_FACTS

python3 - <<'PY'
import json, os, re

env = os.environ
def num(key):
    try:
        return float(env.get(key, ""))
    except ValueError:
        return None
def load(key):
    path = env.get(key, "")
    if not path:
        return None
    with open(path) as f:
        return json.load(f)
def rate(x):
    return "—" if x is None else f"{x:,.0f}"
def ms(x):
    if x is None:
        return "—"
    return "< 0.001 ms" if x < 0.001 else f"{x:.3f} ms"
def ratio(a, b):
    return None if a is None or not b else a / b
def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"
def met(ok):
    return "—" if ok is None else ("met" if ok else "**not met**")
def pair_rate(s, e):
    return None if not s or not e else 1 / (1 / s + 1 / e)

duration, warmup, conns = env["CMP_DURATION"], env["CMP_WARMUP"], env["CMP_CONNECTIONS"]
not_run = "not run" + (f" ({env['CMP_BENCH_PROBLEM']})" if env.get("CMP_BENCH_PROBLEM") else "")
notes = [n for n in env.get("CMP_NOTES", "").split("\n") if n]
with_go = bool(env.get("CMP_GO"))
rows = []
def row(measurement, ours, theirs, r, target, ok, go="—"):
    rows.append((measurement, ours, theirs, go, r, target, ok) if with_go else (measurement, ours, theirs, r, target, ok))
def with_cpu(cell, cpu_key, unit):
    cpu = num(cpu_key)
    return cell if cpu is None else f"{cell} ({cpu:.1f} µs server CPU/{unit})"
def bench_cpu(result):
    return None if not result else result.get("server_cpu_us_per_operation")

for streams, ours_key, ng_key, go_key in (("1", "CMP_OURS_T1", "CMP_NG_T1", "CMP_GO_T1"),
                                          ("16", "CMP_OURS_T16", "CMP_NG_T16", "CMP_GO_T16")):
    ours, theirs = num(ours_key), num(ng_key)
    r = ratio(ours, theirs)
    row(f"TryLock RPCs/s, h2load {conns}×{streams} (ours, 1 event loop ÷ nghttpd, 1 worker)",
        with_cpu(rate(ours), ours_key + "_CPU", "call"), with_cpu(rate(theirs), ng_key + "_CPU", "call"),
        fmt_ratio(r), "≥ 0.8×", met(None if r is None else r >= 0.8),
        go=with_cpu(rate(num(go_key)), go_key + "_CPU", "call"))

def pair_cell(result, problem_note):
    if not result:
        return not_run
    lat = result.get("latency_ms", {})
    cell = rate(result["ops_per_second"]) + f" (p50 {lat.get('p50', 0):.2f} ms, p99 {lat.get('p99', 0):.2f} ms"
    cpu = bench_cpu(result)
    cell += ")" if cpu is None else f", {cpu:.1f} µs server CPU/pair)"
    if result.get("errors"):
        notes.append(f"ldlm-bench pair ({problem_note}) reported errors: {json.dumps(result['errors'])}")
    return cell

pair = load("CMP_PAIR_JSON")
ours_pair = pair["ops_per_second"] if pair else None
ours_pair_cell = pair_cell(pair, "ours")
go_pair = load("CMP_GO_PAIR_JSON")
go_pair_cell = pair_cell(go_pair, "go-ldlm") if with_go else "—"
for label, s_key, e_key, note_key, cpu_key, target in (
    ("no fsync", "CMP_R_MEM_SET", "CMP_R_MEM_EVAL", "CMP_R_MEM_NOTE", "CMP_R_MEM_CPU", True),
    ("appendfsync always", "CMP_R_FS_SET", "CMP_R_FS_EVAL", "CMP_R_FS_NOTE", "CMP_R_FS_CPU", False),
):
    s, e = num(s_key), num(e_key)
    redis = pair_rate(s, e)
    r = ratio(ours_pair, redis)
    theirs = f"{rate(redis)} (SET {rate(s)}/s, EVALSHA {rate(e)}/s"
    redis_cpu = num(cpu_key)
    theirs += ")" if redis_cpu is None else f", {redis_cpu:.1f} µs server CPU/pair)"
    if target:
        row(f"Lock+Unlock pairs/s, {conns} connections (ours ÷ Redis, {label})", ours_pair_cell, theirs,
            fmt_ratio(r), "≥ 1.0×", met(None if r is None else r >= 1.0), go=go_pair_cell)
        cpu_ratio = ratio(bench_cpu(pair), redis_cpu)
        row("Server CPU per Lock+Unlock pair, user + system (ours ÷ Redis, no fsync)",
            "—" if bench_cpu(pair) is None else f"{bench_cpu(pair):.1f} µs",
            "—" if redis_cpu is None else f"{redis_cpu:.1f} µs",
            fmt_ratio(cpu_ratio), "≤ 1.3×", met(None if cpu_ratio is None else cpu_ratio <= 1.3),
            go="—" if bench_cpu(go_pair) is None else f"{bench_cpu(go_pair):.1f} µs")
    else:
        row(f"Lock+Unlock pairs/s, {conns} connections (ours in memory ÷ Redis, {label})", ours_pair_cell, theirs,
            fmt_ratio(r), "reference: durable mode's counterpart", "—")
    if env.get(note_key):
        notes.append("Redis " + env[note_key])

def contended_rows(cont, go_cont):
    def handoff(c):
        h = c.get("handoff_ms", {}) if c else {}
        return h.get("p50"), h.get("p99")
    p50, p99 = handoff(cont)
    go_p50, go_p99 = handoff(go_cont)
    go_cell = lambda text: text if go_cont else "—"
    if p50 is not None and p50 < 0.001:
        notes.append("Hand-off (unlock answered → next grant answered) under 1 µs: the server writes a grant to "
                     "the next waiter before the unlock answer that caused it, so most grants are read first "
                     "(ldlm-bench counts those hand-offs as 0). The unlock-sent row below measures the same hand-off "
                     "from a point that stays positive.")
    row(f"Contended hand-off p50, {conns} clients on one name", ms(p50), "—", "—", "≤ 0.3 ms",
        met(None if p50 is None else p50 <= 0.3), go=go_cell(ms(go_p50)))
    k = ratio(p99, p50)
    if p50 is not None and p50 < 0.001:
        both_zero = p99 is not None and p99 < 0.001
        k_cell = "n/a (p50 ≈ 0)"
        k_met = "met (p99 also < 1 µs)" if both_zero else "see the unlock-sent row"
    else:
        k_cell, k_met = "—" if k is None else f"{k:.2f}× p50", met(None if k is None else k <= 3)
    row("Contended hand-off p99", ms(p99), "—", k_cell, "≤ 3× p50", k_met, go=go_cell(ms(go_p99)))
    def sent(c):
        t = c.get("unlock_sent_to_grant_ms") if c else None
        return (t.get("p50"), t.get("p99")) if t else (None, None)
    s50, s99 = sent(cont)
    g50, g99 = sent(go_cont)
    sk = ratio(s99, s50)
    row("Contended unlock sent → next grant answered, p50 / p99", f"{ms(s50)} / {ms(s99)}", "—",
        "—" if sk is None else f"{sk:.2f}× p50", "p50 ≤ 0.3 ms, p99 ≤ 3× p50",
        met(None if sk is None or s50 is None else (s50 <= 0.3 and sk <= 3)), go=go_cell(f"{ms(g50)} / {ms(g99)}"))
    def fairness(c):
        f = c.get("fairness", {}) if c else {}
        spread = f.get("spread_percent")
        cell = "—" if spread is None else (f"±{spread:.2f}% (grants {f.get('min')}–{f.get('max')}, "
                                           f"mean {f.get('mean', 0):,.1f}, {f.get('clients')} clients; "
                                           f"{c.get('ops_per_second', 0):,.0f} pairs/s)")
        return spread, cell
    spread, cell = fairness(cont)
    _, go_fair = fairness(go_cont)
    row("Contended fairness: max grant-count deviation from the mean", cell, "—", "—", "within ±10%",
        met(None if spread is None else spread <= 10), go=go_cell(go_fair))

cont = load("CMP_CONTENDED_JSON")
go_cont = load("CMP_GO_CONTENDED_JSON")
for c, who in ((cont, "ours"), (go_cont, "go-ldlm")):
    if c and c.get("errors"):
        notes.append(f"ldlm-bench contended ({who}) reported errors: {json.dumps(c['errors'])}")
if cont:
    contended_rows(cont, go_cont)
else:
    for m, t in (("Contended hand-off p50", "≤ 0.3 ms"), ("Contended hand-off p99", "≤ 3× p50"),
                 ("Contended fairness", "within ±10%")):
        row(m, not_run, "—", "—", t, "—")
durable = load("CMP_DURABLE_PAIR_JSON")
durable_pair = durable["ops_per_second"] if durable else None
durable_cell = pair_cell(durable, "state file")
redis_fsync = pair_rate(num("CMP_R_FS_SET"), num("CMP_R_FS_EVAL"))
r = ratio(durable_pair, redis_fsync)
row(f"Lock+Unlock pairs/s, {conns} connections, durable (ours with --state_file ÷ Redis appendfsync always)",
    durable_cell, rate(redis_fsync), fmt_ratio(r), "≥ 1.5×", met(None if r is None else r >= 1.5))
row("Durable mode pairs/s ÷ in-memory pairs/s", durable_cell, rate(ours_pair) if pair else not_run,
    fmt_ratio(ratio(durable_pair, ours_pair)), "—", "—")

# --- scaling: two event loops against one ---
loops1 = [float(x) for x in env.get("CMP_LOOPS1_RATES", "").split()]
loops2 = [float(x) for x in env.get("CMP_LOOPS2_RATES", "").split()]
if loops1 and loops2:
    median = lambda xs: sorted(xs)[len(xs) // 2]
    m1, m2 = median(loops1), median(loops2)
    r = ratio(m2, m1)
    row(f"TryLock RPCs/s, h2load {conns}×16, --event_loops 2 ÷ --event_loops 1 (median of {len(loops1)} interleaved runs)",
        rate(m2), rate(m1), fmt_ratio(r), "≥ 1.2×", met(None if r is None else r >= 1.2))
    notes.append("Scaling runs, req/s, in order: 1 loop " + ", ".join(f"{x:,.0f}" for x in loops1)
                 + "; 2 loops " + ", ".join(f"{x:,.0f}" for x in loops2) + ".")
    def threads(tag, requests):
        def read(name):
            out = {}
            for line in open(os.path.join(env["CMP_THREADS_DIR"], f"threads-{tag}.{name}")):
                tid, ticks, comm = line.rstrip("\n").split(" ", 2)
                out[tid] = (int(ticks), comm)
            return out
        before, after = read("before"), read("after")
        ticks_per_second = os.sysconf("SC_CLK_TCK")
        used = [(comm, (ticks - before.get(tid, (0, ""))[0]) / ticks_per_second) for tid, (ticks, comm) in after.items()]
        used = sorted((u for u in used if u[1] > 0), key=lambda u: -u[1])
        per_call = [(comm, seconds, seconds / requests * 1e6 if requests else 0) for comm, seconds in used]
        notes.append(f"Server threads over the {len(loops1)} runs with {dict(loops1='1 event loop', loops2='2 event loops')[tag]} "
                     f"({requests:,} requests): " + "; ".join(f"{comm} {seconds:.2f} s CPU = {us:.2f} µs/request"
                                                         for comm, seconds, us in per_call) + ".")
        return per_call
    threads("loops1", int(env.get("CMP_LOOPS1_REQUESTS") or 0))
    two = threads("loops2", int(env.get("CMP_LOOPS2_REQUESTS") or 0))
    loop_threads = two[:2]
    if len(loop_threads) == 2:
        named = [t for t in loop_threads if "owner" in t[0].lower()]
        owner = named[0] if named else loop_threads[0]
        other = [t for t in loop_threads if t is not owner][0]
        # The owner loop serves its share of the connections as well as every
        # call's lock work: lock work L = owner − other, connection work C = 2 × other.
        lock_us, conn_us = owner[2] - other[2], 2 * other[2]
        estimate = ", ".join(f"{k} cores ≈ {1e6 / (lock_us + conn_us / k):,.0f} req/s" for k in (8, 16)) if lock_us > 0 else "n/a"
        notes.append(f"From the two loop threads with 2 loops: lock-owner work ≈ {lock_us:.2f} µs/request "
                     f"({owner[0]} minus {other[0]}), connection work ≈ {conn_us:.2f} µs/request, so the owner "
                     f"thread bounds the server at 1 / (L + C/k) with k loops on k cores: {estimate} "
                     f"(server side only, clients on other machines; kernel and NIC scaling not modelled).")

header = ["measurement", "ours", "theirs"] + (["go-ldlm"] if with_go else []) + ["ratio", "target", "met"]
table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
table += ["| " + " | ".join(r) + " |" for r in rows]
table = "\n".join(table)
if with_go:
    notes.append(f"go-ldlm column: {env['CMP_GO']}, same flags and clients as ours (its server has no --event_loops).")

how = (f"{duration} s measured after {warmup} s warm-up per run, loopback, one run. TryLock: h2load with a "
       f"pre-encoded TryLock body against our server and against nghttpd serving an empty file at the same path "
       f"({env['CMP_H2_METHOD']}). Pairs: ldlm-bench `pair` (Lock+Unlock on distinct names) against redis-benchmark "
       f"`SET lock:__rand_int__ v NX PX 30000` and the compare-and-delete script by EVALSHA; Redis pair rate = "
       f"1 / (1/SET + 1/EVALSHA). Server CPU: user + system from /proc/PID/stat over each measured window "
       f"(ldlm-bench --server-pid; around h2load's window and each redis-benchmark run), divided by the calls "
       f"or pairs done; Redis's per pair is its CPU per SET plus per EVALSHA.")
print(table)
print()
for n in notes:
    print(f"- {n}")

if env.get("CMP_WRITE") == "1":
    section = "\n".join([
        "<!-- compare.sh:begin -->",
        "## bench/compare.sh",
        "",
        how,
        "",
        table,
        "",
        *[f"- {n}" for n in notes],
        "",
        "Machine:",
        "",
        env["CMP_FACTS"],
        "",
        "Commands, in order (`$work` is the run's temporary directory, `$aof_dir` one under `.build/`):",
        "",
        "```sh",
        env["CMP_COMMANDS"].rstrip("\n"),
        "```",
        "<!-- compare.sh:end -->",
    ])
    path = env["CMP_FILE"]
    if os.path.exists(path):
        text = open(path).read()
        pattern = re.compile(r"<!-- compare\.sh:begin -->.*?<!-- compare\.sh:end -->", re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _: section, text, count=1)
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
    else:
        text = "# Benchmarks\n\n" + section + "\n"
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    print(f"\n(written to {os.path.basename(path)})")
PY
