#!/usr/bin/env bash
# Regenerates the protobuf-c targets with protoc-c: Sources/CLDLMProto from
# Protos/*.proto, and Sources/CEtcdProto from Protos/etcd/*.proto (which
# codegen/import-etcd-protos.sh writes).
#
# protoc-c 1.4.1 rejects proto3 `optional`, so each proto is first rewritten into
# the wire-identical form protoc itself uses internally: `optional <scalar> x = N;`
# becomes `oneof _x { <scalar> x = N; }` (presence then shows as `_x_case` in C),
# and `optional` on a message field is dropped (absent message fields are NULL).
#
#   codegen/generate.sh          write the generated files
#   codegen/generate.sh --check  exit 1 if the committed files are stale
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-write}

command -v protoc-c >/dev/null || { echo "protoc-c not found: apt-get install protobuf-c-compiler" >&2; exit 2; }

scalars='double|float|int32|int64|uint32|uint64|sint32|sint64|fixed32|fixed64|sfixed32|sfixed64|bool|string|bytes'
workdirs=()
trap 'rm -rf "${workdirs[@]}"' EXIT

# generate <proto dir> <target dir>, both relative to the repository root.
generate() {
  local protos=$1 target=$2
  local out="$root/$target"
  local work
  work=$(mktemp -d)
  workdirs+=("$work")

  for proto in "$root/$protos"/*.proto; do
    sed -E \
      -e "s/^([[:space:]]*)optional[[:space:]]+($scalars)[[:space:]]+([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*([0-9]+)[[:space:]]*;/\1oneof _\3 { \2 \3 = \4; }/" \
      -e "s/^([[:space:]]*)optional[[:space:]]+/\1/" \
      "$proto" > "$work/$(basename "$proto")"
  done

  mkdir -p "$work/gen"
  (cd "$work" && protoc-c --c_out=gen ./*.proto)

  # The C target keeps its public header under include/ so SwiftPM exports it.
  mkdir -p "$work/target/include"
  for c in "$work"/gen/*.pb-c.c; do
    cp "$c" "$work/target/"
  done
  for h in "$work"/gen/*.pb-c.h; do
    cp "$h" "$work/target/include/"
  done

  if [ "$mode" = "--check" ]; then
    if diff -r "$work/target" "$out" >/dev/null 2>&1; then
      echo "codegen: $target is up to date"
    else
      diff -r "$work/target" "$out" | head -40 >&2 || true
      echo "codegen: $target is stale; run codegen/generate.sh and commit" >&2
      exit 1
    fi
  else
    rm -rf "$out"
    mkdir -p "$out"
    cp -R "$work/target/." "$out/"
    echo "codegen: wrote $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
  fi
}

generate Protos Sources/CLDLMProto
generate Protos/etcd Sources/CEtcdProto
