#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The live locks by name: an open-addressing hash table of references.
///
/// A slot is one 8-byte reference where a `Dictionary<String, LockRecord>`
/// entry is 24 bytes; at a million locks that is 32 MB less. Names are hashed
/// and compared as UTF-8 bytes, as protobuf and the Go server do: Swift's
/// `String` equality would make canonically equivalent spellings ("é" as one
/// scalar or as "e" plus a combining accent) one lock.
struct LockIndex {
    private var slots: [LockRecord?] = Array(repeating: nil, count: 16)
    private(set) var count = 0

    private var mask: Int { slots.count - 1 }

    func find(_ name: String) -> LockRecord? {
        var index = Self.hash(name) & mask
        while let record = slots[index] {
            if Self.sameBytes(record.name, name) { return record }
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
        var hole = Self.hash(record.name) & mask
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
            let home = Self.hash(moving.name) & mask
            let homeIsBetween = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next)
            if !homeIsBetween {
                slots[hole] = moving
                slots[next] = nil
                hole = next
            }
        }
    }

    private mutating func place(_ record: LockRecord) {
        var index = Self.hash(record.name) & mask
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

    private static func hash(_ name: String) -> Int {
        var name = name
        var hasher = Hasher()
        name.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        return hasher.finalize()
    }

    private static func sameBytes(_ lhs: String, _ rhs: String) -> Bool {
        var left = lhs
        var right = rhs
        return left.withUTF8 { leftBytes in
            right.withUTF8 { rightBytes in
                leftBytes.count == rightBytes.count
                    && (leftBytes.isEmpty || memcmp(leftBytes.baseAddress!, rightBytes.baseAddress!, leftBytes.count) == 0)
            }
        }
    }
}
