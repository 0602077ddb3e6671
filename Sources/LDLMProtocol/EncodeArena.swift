import CProtobufC

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// C memory for encoding one message with nested or repeated message fields:
/// the strings, structs and pointer arrays protobuf-c reads while packing,
/// all freed together once the bytes are out.
///
/// Messages with top-level strings only borrow Swift's C strings for one call
/// instead (`withCStrings`); a list of messages, each with its own strings,
/// cannot be borrowed that way without one nested closure per string.
package struct EncodeArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    /// Runs `body` with an arena whose memory is freed when `body` returns, so
    /// nothing it made may escape: pack inside `body`.
    package static func with<Result>(_ body: (inout EncodeArena) -> Result) -> Result {
        var arena = EncodeArena()
        defer { arena.allocations.forEach { free($0) } }
        return body(&arena)
    }

    /// A NUL-terminated copy of `string`.
    package mutating func string(_ string: String) -> UnsafeMutablePointer<CChar> {
        let copy = strdup(string)!
        allocations.append(copy)
        return copy
    }

    /// A copy of a C struct, for a pointer array to point at.
    package mutating func object<Value>(_ value: Value) -> UnsafeMutablePointer<Value> {
        let pointer = memory(for: Value.self, count: 1)
        pointer.initialize(to: value)
        return pointer
    }

    /// The pointer array of a repeated message field; NULL when empty, as
    /// protobuf-c leaves it when it unpacks no element.
    package mutating func array<Element>(_ elements: [UnsafeMutablePointer<Element>]) -> UnsafeMutablePointer<UnsafeMutablePointer<Element>?>? {
        guard !elements.isEmpty else { return nil }
        let pointer = memory(for: UnsafeMutablePointer<Element>?.self, count: elements.count)
        for (index, element) in elements.enumerated() {
            (pointer + index).initialize(to: element)
        }
        return pointer
    }

    /// A copy of `bytes` for a `bytes` field.
    package mutating func bytes(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        // protobuf-c reads `len` bytes, none when empty.
        guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let pointer = memory(for: UInt8.self, count: bytes.count)
        pointer.initialize(from: bytes, count: bytes.count)
        return ProtobufCBinaryData(len: bytes.count, data: pointer)
    }

    /// The element array of a repeated scalar or `bytes` field; NULL when empty.
    package mutating func values<Element>(_ values: [Element]) -> UnsafeMutablePointer<Element>? {
        guard !values.isEmpty else { return nil }
        let pointer = memory(for: Element.self, count: values.count)
        pointer.initialize(from: values, count: values.count)
        return pointer
    }

    private mutating func memory<Value>(for _: Value.Type, count: Int) -> UnsafeMutablePointer<Value> {
        let raw = malloc(MemoryLayout<Value>.stride * count)!
        allocations.append(raw)
        return raw.bindMemory(to: Value.self, capacity: count)
    }
}

/// The elements of an unpacked repeated message field.
package func elements<Element>(_ pointers: UnsafeMutablePointer<UnsafeMutablePointer<Element>?>?, count: Int) -> [Element] {
    guard let pointers else { return [] }
    return (0..<count).compactMap { pointers[$0]?.pointee }
}
