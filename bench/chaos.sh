#!/usr/bin/env bash
# Mutual-exclusion check under chaos for DURATION seconds (see bench/chaos.py):
#   bench/chaos.sh 60            # or 300; extra arguments go to bench/chaos.py
# Prints counts and `OK` or `VIOLATIONS n`; exits 0 only on no violation.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:?usage: bench/chaos.sh DURATION [chaos.py options]}
shift
exec python3 bench/chaos.py "$duration" "$@"
