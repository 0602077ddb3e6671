#!/usr/bin/env bash
# Mutual-exclusion and fencing check under chaos against a replica set
# (bench/chaos.py --ha): 3 replicas over a 3-member etcd cluster, the primary
# SIGKILLed every 15-30 s and started again as a replica, workers SIGKILLed and
# SIGSTOPped, for DURATION seconds:
#   bench/ha_chaos.sh 300            # extra arguments go to bench/chaos.py
# Prints counts, the fencing tokens across each failover, and `OK` or
# `VIOLATIONS n`; exits 0 only on no violation.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:?usage: bench/ha_chaos.sh DURATION [chaos.py options]}
shift
if [ -z "${LDLM_SERVER_BIN:-}" ]; then
  swift build -c release --product ldlm-server >&2
  export LDLM_SERVER_BIN=$PWD/.build/release/ldlm-server
fi
exec python3 bench/chaos.py "$duration" --ha "$@"
