#!/usr/bin/env bash
# Regenerates the protobuf-c targets with protoc-c: Sources/CLDLMProto from
# Protos/*.proto (the C messages, and the descriptors that gRPC server
# reflection serves), and Sources/CEtcdProto from Protos/etcd/*.proto (which
# codegen/import-etcd-protos.sh writes).
#
# protoc-c 1.4.1 rejects proto3 `optional`, so each proto is first rewritten into
# the wire-identical form protoc itself uses internally: `optional <scalar> x = N;`
# becomes `oneof _x { <scalar> x = N; }` (presence then shows as `_x_case` in C),
# and `optional` on a message field is dropped (absent message fields are NULL).
#
# Reflection serves the ORIGINAL Protos/*.proto, as users must see the real
# schema: protoc-c (a full protoc front end, libprotoc 3.21) writes their
# FileDescriptorSet, comments included, and reflection_index.py turns it into
# reflection_descriptors.c/.h, the bytes of each file and which file declares
# each symbol. reflection_v1alpha.proto is wire-identical to reflection.proto,
# so it gets descriptors but no C messages of its own.
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

# generate <proto dir> <target dir> [--reflection], both relative to the
# repository root; --reflection adds the descriptors the server serves.
generate() {
  local protos=$1 target=$2 reflection=${3:-}
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
  if [ -n "$reflection" ]; then
    rm "$work/reflection_v1alpha.proto"
    (cd "$root/$protos" && protoc-c --descriptor_set_out="$work/descriptors.pb" --include_imports --include_source_info ./*.proto)
  fi
  (cd "$work" && protoc-c --c_out=gen ./*.proto)

  # The C target keeps its public header under include/ so SwiftPM exports it.
  mkdir -p "$work/target/include"
  for c in "$work"/gen/*.pb-c.c; do
    cp "$c" "$work/target/"
  done
  for h in "$work"/gen/*.pb-c.h; do
    cp "$h" "$work/target/include/"
  done
  if [ -n "$reflection" ]; then
    python3 "$root/codegen/reflection_index.py" "$work/descriptors.pb" \
      "$work/target/reflection_descriptors.c" "$work/target/include/reflection_descriptors.h"
  fi

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

generate Protos Sources/CLDLMProto --reflection
generate Protos/etcd Sources/CEtcdProto
