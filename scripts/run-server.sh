#!/usr/bin/env bash
# Builds ldlm-server (release) and runs it. With no arguments it listens on
# localhost:3144; any ldlm-server flags are passed through, e.g.
#   scripts/run-server.sh --listen_address 0.0.0.0:3144 --password_file /etc/ldlm/password
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product ldlm-server
exec .build/release/ldlm-server "$@"
