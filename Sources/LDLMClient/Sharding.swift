/// Which shard a lock name belongs to: `crc32(name) % shards`, with CRC-32/IEEE
/// (zlib's `crc32`, Python's `zlib.crc32`), so clients in any language agree.
enum Sharding {
    static func shard(of name: String, shards: Int) -> Int {
        Int(crc32(Array(name.utf8)) % UInt32(shards))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return ~crc
    }

    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 {
            value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1
        }
        return value
    }
}
