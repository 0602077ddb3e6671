/// Hand-built protobuf wire bytes, so tests do not trust the encoder they check.
enum Wire {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
        return bytes
    }

    static func tag(_ field: UInt64, wireType: UInt64) -> [UInt8] {
        varint(field << 3 | wireType)
    }

    /// An `int32` field: negative values are sign-extended to ten bytes.
    static func int32(_ field: UInt64, _ value: Int32) -> [UInt8] {
        tag(field, wireType: 0) + varint(UInt64(bitPattern: Int64(value)))
    }

    static func bool(_ field: UInt64, _ value: Bool) -> [UInt8] {
        tag(field, wireType: 0) + varint(value ? 1 : 0)
    }

    static func bytes(_ field: UInt64, _ payload: [UInt8]) -> [UInt8] {
        tag(field, wireType: 2) + varint(UInt64(payload.count)) + payload
    }

    static func string(_ field: UInt64, _ text: String) -> [UInt8] {
        bytes(field, Array(text.utf8))
    }

    static func fixed32(_ field: UInt64, _ value: UInt32) -> [UInt8] {
        tag(field, wireType: 5) + withUnsafeBytes(of: value.littleEndian, Array.init)
    }

    static func fixed64(_ field: UInt64, _ value: UInt64) -> [UInt8] {
        tag(field, wireType: 1) + withUnsafeBytes(of: value.littleEndian, Array.init)
    }
}
