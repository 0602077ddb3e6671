#!/usr/bin/env bash
# Installs what building and testing need: Debian packages and the Python
# clients used by the interop tests. Safe to run again; does nothing when all
# is present.
set -euo pipefail

apt_packages=(libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler pkg-config nghttp2-client)
# The etcd client's tests run a real etcd; its protos are checked against Debian's copy.
if [ "${1:-}" = "--with-test-deps" ]; then
  apt_packages+=(etcd-server golang-etcd-server-dev)
fi
missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--with-test-deps" ]; then
  if ! python3 -c 'import ldlm, grpc, grpc_tools, grpc_reflection, pytest, requests, prometheus_client' 2>/dev/null \
    || [ "$(python3 -c 'import importlib.metadata as m; print(m.version("py-ldlm"))' 2>/dev/null)" != "1.1.3" ]; then
    echo "setup: installing Python test dependencies"
    python3 -m pip install -q -r "$(dirname "$0")/../Tests/interop/requirements.txt"
  fi
fi
