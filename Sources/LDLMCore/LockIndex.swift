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
        var hasher = Hasher()
        hasher.combine(bytes: UnsafeRawBufferPointer(name))
        return UInt32(truncatingIfNeeded: hasher.finalize())
    }
}
