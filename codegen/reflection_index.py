#!/usr/bin/env python3
"""Writes the C source and header that serve gRPC server reflection from a
FileDescriptorSet (protoc --descriptor_set_out --include_imports).

Each file's serialized FileDescriptorProto is kept byte for byte as protoc wrote
it, with the files it imports directly or not, and every fully qualified symbol
is mapped to the file declaring it, as grpc's own reflection (C++
DescriptorPool::FindFileContainingSymbol) finds them: messages (nested ones
too), fields, oneofs, enums, enum values (in the scope of their enum, as
protobuf scopes them), services and methods.

Only the standard library: the few FileDescriptorProto fields needed are read
off the wire here, so codegen needs no protobuf package.

    reflection_index.py SET.pb OUT.c OUT.h
"""
import sys

# Field numbers in google/protobuf/descriptor.proto.
FILE_NAME, FILE_PACKAGE, FILE_DEPENDENCY, FILE_MESSAGE, FILE_ENUM, FILE_SERVICE, FILE_EXTENSION = 1, 2, 3, 4, 5, 6, 7
MESSAGE_NAME, MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM, MESSAGE_EXTENSION, MESSAGE_ONEOF = 1, 2, 3, 4, 6, 8
ENUM_NAME, ENUM_VALUE = 1, 2
SERVICE_NAME, SERVICE_METHOD = 1, 2
NAME = 1


def fields(data):
    """(number, value) of each field: bytes for length-delimited ones, ints otherwise."""
    offset = 0

    def varint():
        nonlocal offset
        value = shift = 0
        while True:
            byte = data[offset]
            offset += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while offset < len(data):
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            yield number, varint()
        elif wire_type == 1:
            yield number, data[offset:offset + 8]
            offset += 8
        elif wire_type == 2:
            length = varint()
            yield number, data[offset:offset + length]
            offset += length
        elif wire_type == 5:
            yield number, data[offset:offset + 4]
            offset += 4
        else:
            raise ValueError(f"unexpected wire type {wire_type}")


def repeated(data, number):
    return [value for field, value in fields(data) if field == number]


def text(data, number):
    values = repeated(data, number)
    return values[-1].decode() if values else ""


def qualified(scope, name):
    return f"{scope}.{name}" if scope else name


def enum_symbols(enum, scope):
    """The enum, then its values, which protobuf scopes beside the enum."""
    name = qualified(scope, text(enum, ENUM_NAME))
    yield name, False
    for value in repeated(enum, ENUM_VALUE):
        yield qualified(scope, text(value, NAME)), False


def message_symbols(message, scope):
    name = qualified(scope, text(message, MESSAGE_NAME))
    if repeated(message, MESSAGE_EXTENSION):
        raise SystemExit(f"reflection index: {name} declares extensions, which the server cannot reflect yet")
    yield name, True
    for field in repeated(message, MESSAGE_FIELD):
        yield qualified(name, text(field, NAME)), False
    for oneof in repeated(message, MESSAGE_ONEOF):
        yield qualified(name, text(oneof, NAME)), False
    for nested in repeated(message, MESSAGE_NESTED):
        yield from message_symbols(nested, name)
    for enum in repeated(message, MESSAGE_ENUM):
        yield from enum_symbols(enum, name)


def file_symbols(file):
    package = text(file, FILE_PACKAGE)
    if repeated(file, FILE_EXTENSION):
        raise SystemExit(f"reflection index: {text(file, FILE_NAME)} declares extensions, which the server cannot reflect yet")
    for message in repeated(file, FILE_MESSAGE):
        yield from message_symbols(message, package)
    for enum in repeated(file, FILE_ENUM):
        yield from enum_symbols(enum, package)
    for service in repeated(file, FILE_SERVICE):
        name = qualified(package, text(service, SERVICE_NAME))
        yield name, False
        for method in repeated(service, SERVICE_METHOD):
            yield qualified(name, text(method, NAME)), False


def c_string(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def c_bytes(data):
    lines = []
    for start in range(0, len(data), 16):
        lines.append("    " + " ".join(f"0x{byte:02x}," for byte in data[start:start + 16]))
    return "\n".join(lines)


def main(set_path, c_path, h_path):
    with open(set_path, "rb") as set_file:
        files = repeated(set_file.read(), 1)
    names = [text(file, FILE_NAME) for file in files]
    index_of = {name: index for index, name in enumerate(names)}

    def closure(index, seen):
        """The files `index` imports, directly or not, each once, nearest first."""
        for dependency in repeated(files[index], FILE_DEPENDENCY):
            found = index_of[dependency.decode()]
            if found not in seen:
                seen.append(found)
                closure(found, seen)
        return seen

    symbols = {}
    for index, file in enumerate(files):
        for symbol, is_message in file_symbols(file):
            if symbol in symbols:
                raise SystemExit(f"reflection index: {symbol} is declared twice")
            symbols[symbol] = (index, is_message)

    header = """// Generated by codegen/reflection_index.py from Protos/*.proto; do not edit.
// The descriptors gRPC server reflection serves, and which file declares each symbol.
#ifndef LDLM_REFLECTION_DESCRIPTORS_H
#define LDLM_REFLECTION_DESCRIPTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  /// The name the file was compiled under, e.g. "ldlm.proto".
  const char *name;
  /// Its serialized google.protobuf.FileDescriptorProto.
  const uint8_t *descriptor;
  size_t descriptor_length;
  /// Indices of the files it imports, directly or not, each once.
  const uint16_t *dependencies;
  size_t dependency_count;
} LDLMReflectionFile;

typedef struct {
  /// Fully qualified, e.g. "ldlm.LDLM.Lock"; sorted, so the file diffs well.
  const char *name;
  /// Index into ldlm_reflection_files.
  uint16_t file;
  bool is_message;
} LDLMReflectionSymbol;

// Pointers rather than arrays of unknown size, which Swift cannot import.
extern const LDLMReflectionFile *const ldlm_reflection_files;
extern const size_t ldlm_reflection_file_count;
extern const LDLMReflectionSymbol *const ldlm_reflection_symbols;
extern const size_t ldlm_reflection_symbol_count;

#endif
"""
    out = ["// Generated by codegen/reflection_index.py from Protos/*.proto; do not edit.",
           '#include "reflection_descriptors.h"', ""]
    for index, file in enumerate(files):
        out.append(f"// {names[index]}")
        out.append(f"static const uint8_t descriptor_{index}[] = {{")
        out.append(c_bytes(file))
        out.append("};")
        dependencies = closure(index, [])
        if dependencies:
            out.append(f"static const uint16_t dependencies_{index}[] = {{{', '.join(map(str, dependencies))}}};")
        out.append("")
    out.append("static const LDLMReflectionFile files[] = {")
    for index, file in enumerate(files):
        dependencies = closure(index, [])
        dependency_array = f"dependencies_{index}" if dependencies else "NULL"
        out.append(f"    {{{c_string(names[index])}, descriptor_{index}, {len(file)}, {dependency_array}, {len(dependencies)}}},")
    out.append("};")
    out.append("const LDLMReflectionFile *const ldlm_reflection_files = files;")
    out.append(f"const size_t ldlm_reflection_file_count = {len(files)};")
    out.append("")
    out.append("static const LDLMReflectionSymbol symbols[] = {")
    for symbol in sorted(symbols):
        file, is_message = symbols[symbol]
        out.append(f"    {{{c_string(symbol)}, {file}, {'true' if is_message else 'false'}}},")
    out.append("};")
    out.append("const LDLMReflectionSymbol *const ldlm_reflection_symbols = symbols;")
    out.append(f"const size_t ldlm_reflection_symbol_count = {len(symbols)};")

    with open(c_path, "w") as c_file:
        c_file.write("\n".join(out) + "\n")
    with open(h_path, "w") as h_file:
        h_file.write(header)


if __name__ == "__main__":
    main(*sys.argv[1:])
