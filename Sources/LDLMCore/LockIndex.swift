/// The live locks by name: an open-addressing hash table of references.
///
/// A slot is one 8-byte reference where a `Dictionary<String, LockRecord>`
/// entry is 24 bytes; at a million locks that is 32 MB less. Names are hashed
/// and compared as UTF-8 bytes, as protobuf and the Go server do: Swift's
/// `String` equality would make canonically equivalent spellings ("é" as one
/// scalar or as "e" plus a combining accent) one lock. Each record keeps its
/// name's hash, so removing, shifting and growing never hash a name again.
struct LockIndex {
    private var slots: [LockRecord?] = Array(repeating: nil, count: 16)
    private(set) var count = 0

    private var mask: Int { slots.count - 1 }

    func find(_ name: String) -> LockRecord? {
        var name = name
        return name.withUTF8 { find($0, hash: Self.hash(of: $0)) }
    }

    /// `hash` is ``hash(of:)`` of `name`.
    func find(_ name: UnsafeBufferPointer<UInt8>, hash: UInt32) -> LockRecord? {
        var index = Int(hash) & mask
        while let record = slots[index] {
            if record.nameHash == hash, record.hasName(name) { return record }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Every record, in slot order.
    var records: [LockRecord] {
        slots.compactMap { $0 }
    }

    /// Adds a record whose name is not in the index yet.
    mutating func insert(_ record: LockRecord) {
        if (count + 1) * 4 > slots.count * 3 {
            grow()
        }
        place(record)
        count += 1
    }

    /// Removes this very record (not another of the same name), if present.
    mutating func remove(_ record: LockRecord) {
        var hole = Int(record.nameHash) & mask
        while let candidate = slots[hole], candidate !== record {
            hole = (hole + 1) & mask
        }
        guard slots[hole] != nil else { return }
        slots[hole] = nil
        count -= 1
        // Shift later members of the probe run back, so lookups never stop at the hole.
        var next = hole
        while true {
            next = (next + 1) & mask
            guard let moving = slots[next] else { return }
            let home = Int(moving.nameHash) & mask
            let homeIsBetween = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next)
            if !homeIsBetween {
                slots[hole] = moving
                slots[next] = nil
                hole = next
            }
        }
    }

    private mutating func place(_ record: LockRecord) {
        var index = Int(record.nameHash) & mask
        while slots[index] != nil {
            index = (index + 1) & mask
        }
        slots[index] = record
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: nil, count: old.count * 2)
        for case let record? in old {
            place(record)
        }
    }

    /// 32 bits are enough: they address up to 2^32 slots.
    static func hash(of name: UnsafeBufferPointer<UInt8>) -> UInt32 {
        UInt32(truncatingIfNeeded: sipHash13(name, key: processKey))
    }

    /// Drawn once per process, as `Hasher` draws its seed: clients choose the
    /// names, and must not be able to pick ones that collide.
    private static let processKey: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()

    /// SipHash-1-3, the function behind `Hasher`, over the bytes directly:
    /// `Hasher.combine(bytes:)` buffers them and costs several times more.
    static func sipHash13(_ bytes: UnsafeBufferPointer<UInt8>, key: (UInt64, UInt64)) -> UInt64 {
        var v0 = key.0 ^ 0x736f_6d65_7073_6575
        var v1 = key.1 ^ 0x646f_7261_6e64_6f6d
        var v2 = key.0 ^ 0x6c79_6765_6e65_7261
        var v3 = key.1 ^ 0x7465_6462_7974_6573
        @inline(__always) func round() {
            v0 &+= v1; v1 = v1.rotatedLeft(13); v1 ^= v0; v0 = v0.rotatedLeft(32)
            v2 &+= v3; v3 = v3.rotatedLeft(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotatedLeft(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotatedLeft(17); v1 ^= v2; v2 = v2.rotatedLeft(32)
        }
        @inline(__always) func compress(_ word: UInt64) {
            v3 ^= word
            round()
            v0 ^= word
        }
        let raw = UnsafeRawBufferPointer(bytes)
        let count = raw.count
        var offset = 0
        while count - offset >= 8 {
            compress(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            offset += 8
        }
        var last = UInt64(truncatingIfNeeded: count) << 56
        var shift: UInt64 = 0
        while offset < count {
            last |= UInt64(raw[offset]) << shift
            shift += 8
            offset += 1
        }
        compress(last)
        v2 ^= 0xff
        round()
        round()
        round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    @inline(__always) fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
        (self &<< count) | (self &>> (64 &- count))
    }
}
