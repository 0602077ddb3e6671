import CLDLMProto
import CProtobufC

/// Checks what protobuf-c does not: proto3 requires every `string` field to be
/// valid UTF-8, and a C string cannot carry a NUL byte, so a name with one
/// would silently be cut short and could name another lock. Walks the wire
/// bytes with the message's descriptor, nested messages included.
enum WireStringValidator {
    private static let maximumNesting = 32

    static func validate(
        _ bytes: UnsafeRawBufferPointer,
        descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
        nesting: Int = 0
    ) throws(MessageDecodingError) {
        guard nesting < maximumNesting else { throw MessageDecodingError("message nested too deeply") }
        var reader = WireReader(bytes: bytes)
        while !reader.isAtEnd {
            let tag = try reader.varint()
            let fieldNumber = tag >> 3
            guard fieldNumber > 0, fieldNumber <= UInt64(UInt32.max) else {
                throw MessageDecodingError("invalid field number \(fieldNumber)")
            }
            switch tag & 7 {
            case 0: _ = try reader.varint()
            case 1: _ = try reader.bytes(count: 8)
            case 5: _ = try reader.bytes(count: 4)
            case 2:
                let length = try reader.varint()
                guard length <= UInt64(reader.remaining) else { throw MessageDecodingError("truncated field \(fieldNumber)") }
                let payload = try reader.bytes(count: Int(length))
                guard let field = protobuf_c_message_descriptor_get_field(descriptor, UInt32(fieldNumber)) else { continue }
                switch field.pointee.type {
                case PROTOBUF_C_TYPE_STRING:
                    try validateString(payload, fieldName: field.pointee.name)
                case PROTOBUF_C_TYPE_MESSAGE:
                    let nested = field.pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                    try validate(payload, descriptor: nested, nesting: nesting + 1)
                default:
                    break
                }
            default:
                throw MessageDecodingError("unsupported wire type \(tag & 7) for field \(fieldNumber)")
            }
        }
    }

    /// `fieldName` stays a C string until an error needs it: this runs for every string of every request.
    private static func validateString(_ bytes: UnsafeRawBufferPointer, fieldName: UnsafePointer<CChar>) throws(MessageDecodingError) {
        guard let base = bytes.baseAddress else { return }
        // Eight bytes at a time: names and keys run to dozens of bytes.
        let lowBits: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        var highBitsSeen: UInt64 = 0
        var offset = 0
        while offset + 8 <= bytes.count {
            let word = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            // Non-zero exactly when one of the eight bytes is 0.
            if (word &- lowBits) & ~word & highBits != 0 {
                throw MessageDecodingError("string field \"\(String(cString: fieldName))\" contains a NUL byte")
            }
            highBitsSeen |= word & highBits
            offset += 8
        }
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == 0 {
                throw MessageDecodingError("string field \"\(String(cString: fieldName))\" contains a NUL byte")
            }
            highBitsSeen |= UInt64(byte & 0x80)
            offset += 1
        }
        // Names and keys are nearly always ASCII, which is valid UTF-8 as it stands.
        if highBitsSeen != 0, String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) == nil {
            throw MessageDecodingError("string field \"\(String(cString: fieldName))\" is not valid UTF-8")
        }
    }
}

private struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var isAtEnd: Bool { offset >= bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func varint() throws(MessageDecodingError) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            guard offset < bytes.count else { throw MessageDecodingError("truncated varint") }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        throw MessageDecodingError("varint longer than 10 bytes")
    }

    mutating func bytes(count: Int) throws(MessageDecodingError) -> UnsafeRawBufferPointer {
        guard count <= remaining else { throw MessageDecodingError("truncated field") }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
    }
}
