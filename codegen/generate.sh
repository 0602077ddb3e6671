#!/usr/bin/env bash
# Regenerates Sources/CLDLMProto from Protos/*.proto with protoc-c: the C
# messages, and the descriptors that gRPC server reflection serves.
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
out="$root/Sources/CLDLMProto"
mode=${1:-write}

command -v protoc-c >/dev/null || { echo "protoc-c not found: apt-get install protobuf-c-compiler" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scalars='double|float|int32|int64|uint32|uint64|sint32|sint64|fixed32|fixed64|sfixed32|sfixed64|bool|string|bytes'
for proto in "$root"/Protos/*.proto; do
  sed -E \
    -e "s/^([[:space:]]*)optional[[:space:]]+($scalars)[[:space:]]+([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*([0-9]+)[[:space:]]*;/\1oneof _\3 { \2 \3 = \4; }/" \
    -e "s/^([[:space:]]*)optional[[:space:]]+/\1/" \
    "$proto" > "$work/$(basename "$proto")"
done

mkdir -p "$work/gen"
(cd "$work" && rm reflection_v1alpha.proto && protoc-c --c_out=gen ./*.proto)
(cd "$root/Protos" && protoc-c --descriptor_set_out="$work/descriptors.pb" --include_imports --include_source_info ./*.proto)

# The C target keeps its public header under include/ so SwiftPM exports it.
mkdir -p "$work/target/include"
for c in "$work"/gen/*.pb-c.c; do
  cp "$c" "$work/target/"
done
for h in "$work"/gen/*.pb-c.h; do
  cp "$h" "$work/target/include/"
done
python3 "$root/codegen/reflection_index.py" "$work/descriptors.pb" \
  "$work/target/reflection_descriptors.c" "$work/target/include/reflection_descriptors.h"

if [ "$mode" = "--check" ]; then
  if diff -r "$work/target" "$out" >/dev/null 2>&1; then
    echo "codegen: generated C is up to date"
  else
    diff -r "$work/target" "$out" | head -40 >&2 || true
    echo "codegen: Sources/CLDLMProto is stale; run codegen/generate.sh and commit" >&2
    exit 1
  fi
else
  rm -rf "$out"
  mkdir -p "$out"
  cp -R "$work/target/." "$out/"
  echo "codegen: wrote $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
fi
