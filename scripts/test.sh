#!/usr/bin/env bash
# Runs every test: the generated-code check, the Swift unit tests and the
# interop tests that drive the real server with py-ldlm and grpcio.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-deps

echo "== generated protobuf-c code"
codegen/import-etcd-protos.sh --check
codegen/generate.sh --check

echo "== Swift unit tests"
swift build --build-tests
swift test --skip-build

echo "== LDLMClient as a versioned dependency of another package"
scripts/check-client-dependency.sh

echo "== interop tests (py-ldlm $(python3 -c 'import importlib.metadata as m; print(m.version("py-ldlm"))'), grpcio), one event loop"
LDLM_TEST_EVENT_LOOPS=1 LDLM_SERVER_BIN="$PWD/.build/debug/ldlm-server" python3 -m pytest Tests/interop -q -p no:cacheprovider

echo "== interop tests again, four event loops: calls hop to the lock owner's loop"
LDLM_TEST_EVENT_LOOPS=4 LDLM_SERVER_BIN="$PWD/.build/debug/ldlm-server" python3 -m pytest Tests/interop -q -p no:cacheprovider
