#!/usr/bin/env bash
# HA replica set vs etcd's lock service on one 3-member etcd cluster (see
# bench/ha_compare.py): pairs/s, contended hand-off, failover times.
#   bench/ha_compare.sh [ha_compare.py options]     e.g. --duration 8 --concurrency 16,64
# Builds the release server and ldlm-bench first unless LDLM_SERVER_BIN / LDLM_BENCH are set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${LDLM_SERVER_BIN:-}" ]; then swift build -c release --product ldlm-server >&2; fi
if [ -z "${LDLM_BENCH:-}" ]; then swift build -c release --product ldlm-bench >&2; fi
exec python3 bench/ha_compare.py "$@"
