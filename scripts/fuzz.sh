#!/usr/bin/env bash
# Builds the libFuzzer targets with ASan in .build-fuzz and runs each for
# SECONDS (default 60), starting from the committed corpus in fuzz/corpus.
# New inputs go to .build-fuzz/corpus/<target>, crash inputs to
# .build-fuzz/crashes/<target>; a line per target gives executions, coverage
# (libFuzzer's cov: edges and ft: features) and crashes.
#   scripts/fuzz.sh [SECONDS] [TARGET...]   TARGET: server-connection, message-decoding
# Exits non-zero if any target crashed. A crash input replays in a plain build:
#   .build/debug/fuzz-<target> FILE
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(server-connection message-decoding)

echo "== building fuzz targets (-sanitize=fuzzer,address) in .build-fuzz"
for target in "${targets[@]}"; do
  swift build --scratch-path .build-fuzz --product "fuzz-$target" \
    -Xswiftc -sanitize=fuzzer,address 2>&1 | tail -1
done

# SwiftPM's runtime backtracer would hide libFuzzer's and ASan's crash reports.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
summary=()
failed=0
for target in "${targets[@]}"; do
  work=".build-fuzz/corpus/$target" crashes=".build-fuzz/crashes/$target" log=".build-fuzz/fuzz-$target.log"
  rm -rf "$crashes"; mkdir -p "$work" "$crashes"
  echo "== fuzz-$target for ${seconds}s (log: $log)"
  status=0
  ".build-fuzz/debug/fuzz-$target" "$work" "fuzz/corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$crashes/" >"$log" 2>&1 || status=$?
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  executions=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo "?")
  ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo "?")
  crash_files=$(find "$crashes" -type f | wc -l)
  if [ "$status" -ne 0 ]; then
    failed=1
    grep -E 'ERROR: |Fatal error|precondition|Test unit written' "$log" | head -5 || true
  fi
  summary+=("$(printf '%-18s executions: %-9s cov: %-6s ft: %-6s crashes: %s (exit %s)' "$target" "$executions" "$cov" "$ft" "$crash_files" "$status")")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
