/// A map from HTTP/2 stream IDs to values, for the per-request hot path.
///
/// `[Int32: Value]` hashes every key with SipHash; this table uses a
/// multiplicative (Fibonacci) hash instead, with open addressing, a
/// power-of-two capacity and linear probing. Removal shifts the following
/// entries of the cluster back (no tombstones), so lookups never wade through
/// deleted slots however many streams a connection has churned through.
///
/// Keys must be positive, as stream IDs are: 0 marks an empty slot. Looking up,
/// modifying or removing 0 or a negative ID finds nothing; storing one traps.
///
/// The map is a value with copy-on-write storage, like `Dictionary`. An empty
/// map allocates nothing; the table grows at 3/4 load and never shrinks
/// (`removeAll()` keeps the capacity). The storage pointers and the count live
/// in the struct itself, so a lookup reads no object and retains nothing;
/// mutations check that the storage is uniquely referenced first.
///
/// The subscript reads by borrowing (`map[id]?.field` copies the field, not the
/// whole value) and mutates in place: `map[id]?.field = x`,
/// `map[id]?.array.append(y)` and ``modifyValue(forKey:_:)`` never copy the
/// value, so a value holding an array can append without copy-on-write.
public struct StreamIDMap<Value> {
    /// Owns the slots and keeps `_keys` / `_values` alive; nil until the first insertion.
    @usableFromInline var _storage: _StreamIDMapStorage<Value>?
    /// `capacity` keys, 0 in an empty slot.
    @usableFromInline var _keys: UnsafeMutablePointer<Int32>?
    /// `capacity` values, nil exactly where the key is 0. Optional slots let the
    /// subscript yield a stored value in place, for reading and for writing.
    @usableFromInline var _values: UnsafeMutablePointer<Value?>?
    @usableFromInline var _count: Int
    /// `capacity - 1`; -1 (capacity 0) while there is no storage.
    @usableFromInline var _mask: Int
    /// `64 - log2(capacity)`: the hash keeps the top bits of the product.
    @usableFromInline var _shift: Int

    /// An empty map; allocates nothing.
    @inlinable
    public init() {
        _storage = nil
        _keys = nil
        _values = nil
        _count = 0
        _mask = -1
        _shift = 64
    }

    /// The number of streams in the map.
    @inlinable
    public var count: Int { _count }

    @inlinable
    public var isEmpty: Bool { _count == 0 }

    /// The value stored for `streamID`, or nil. Setting nil removes the entry.
    ///
    /// Reads borrow the stored value and writes mutate it where it lies:
    /// `map[id]?.field` copies only the field, and `map[id]?.field = x` or
    /// `map[id]?.array.append(y)` copy nothing.
    @inlinable
    public subscript(streamID: Int32) -> Value? {
        _read {
            if _count != 0, streamID > 0 {
                let (index, found) = _find(streamID)
                if found {
                    yield _values.unsafelyUnwrapped[index]
                    return
                }
            }
            yield nil
        }
        set {
            if let newValue {
                updateValue(newValue, forKey: streamID)
            } else {
                removeValue(forKey: streamID)
            }
        }
        _modify {
            if _count != 0, streamID > 0 {
                let (index, found) = _find(streamID)
                if found {
                    _ensureUnique()
                    let slot = _values.unsafelyUnwrapped + index
                    // Exclusivity rules out any other access to the map until
                    // the write-back; setting nil removes the entry then.
                    defer {
                        if case .none = slot.pointee {
                            slot.deinitialize(count: 1)
                            _removeSlot(index)
                        }
                    }
                    yield &slot.pointee
                    return
                }
            }
            var value: Value? = nil
            defer {
                if let newValue = value.take() { _insertAbsent(streamID, newValue, slot: -1) }
            }
            yield &value
        }
    }

    /// Whether `streamID` has an entry; reads no value.
    @inlinable
    public func contains(_ streamID: Int32) -> Bool {
        _count != 0 && streamID > 0 && _find(streamID).found
    }

    /// Stores `value` for `streamID`, returning the value it replaces, if any.
    @inlinable
    @discardableResult
    public mutating func updateValue(_ value: __owned Value, forKey streamID: Int32) -> Value? {
        precondition(streamID > 0, "StreamIDMap keys are positive HTTP/2 stream IDs")
        var slot = -1
        if _count != 0 {
            let (index, found) = _find(streamID)
            if found {
                _ensureUnique()
                let stored = _values.unsafelyUnwrapped + index
                let old = stored.move()
                stored.initialize(to: value)
                return old
            }
            slot = index
        }
        _insertAbsent(streamID, value, slot: slot)
        return nil
    }

    /// Removes the entry for `streamID` and returns its value, if there was one.
    @inlinable
    @discardableResult
    public mutating func removeValue(forKey streamID: Int32) -> Value? {
        guard _count != 0, streamID > 0 else { return nil }
        let (index, found) = _find(streamID)
        guard found else { return nil }
        _ensureUnique()
        let old = (_values.unsafelyUnwrapped + index).move()
        _removeSlot(index)
        return old
    }

    /// Runs `body` on the value stored for `streamID`, in place, and returns
    /// its result; returns nil without calling `body` when there is no entry.
    ///
    /// The value is not copied out, so `body` may append to an array it holds
    /// without that array being copied.
    @inlinable
    @discardableResult
    public mutating func modifyValue<R>(forKey streamID: Int32, _ body: (inout Value) throws -> R) rethrows -> R? {
        guard _count != 0, streamID > 0 else { return nil }
        let (index, found) = _find(streamID)
        guard found else { return nil }
        _ensureUnique()
        return try body(&_values.unsafelyUnwrapped[index]!)
    }

    /// Removes every entry, keeping the capacity when the storage is not shared.
    @inlinable
    public mutating func removeAll() {
        guard _storage != nil else { return }
        guard isKnownUniquelyReferenced(&_storage) else {
            self = StreamIDMap()
            return
        }
        guard _count != 0 else { return }
        let keys = _keys.unsafelyUnwrapped
        let values = _values.unsafelyUnwrapped
        for index in 0..._mask where keys[index] != 0 {
            keys[index] = 0
            values[index] = nil
        }
        _count = 0
    }

    /// The values, in table order.
    @inlinable
    public var values: LazyMapSequence<StreamIDMap<Value>, Value> {
        lazy.map { $0.value }
    }

    // MARK: Internals

    /// The home slot of `key`: the top bits of the key times 2^64/φ.
    @inlinable
    @inline(__always)
    func _bucket(_ key: Int32) -> Int {
        Self._bucket(key, shift: _shift)
    }

    @inlinable
    @inline(__always)
    static func _bucket(_ key: Int32, shift: Int) -> Int {
        let mixed = UInt64(truncatingIfNeeded: UInt32(bitPattern: key)) ^ streamIDHashSeed
        let product = mixed &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: product &>> UInt64(truncatingIfNeeded: shift))
    }

    /// The slot holding `key`, or the empty slot that ends its probe sequence.
    /// Requires storage and a positive key.
    @inlinable
    @inline(__always)
    func _find(_ key: Int32) -> (index: Int, found: Bool) {
        let keys = _keys.unsafelyUnwrapped
        var index = _bucket(key)
        while true {
            let candidate = keys[index]
            if candidate == key { return (index, true) }
            if candidate == 0 { return (index, false) }
            index = (index &+ 1) & _mask
        }
    }

    /// Copies the storage, slot for slot, if another map shares it. Requires storage.
    @inlinable
    @inline(__always)
    mutating func _ensureUnique() {
        if _slowPath(!isKnownUniquelyReferenced(&_storage)) {
            _copyStorage()
        }
    }

    /// Inserts a key known to be absent. `slot`, when not -1, is the empty
    /// slot that ended the key's probe sequence in the current storage.
    @inlinable
    mutating func _insertAbsent(_ key: Int32, _ value: __owned Value, slot: Int) {
        precondition(key > 0, "StreamIDMap keys are positive HTTP/2 stream IDs")
        var slot = slot
        let capacity = _mask &+ 1
        // Grow at 3/4 load; with no storage (capacity 0) the threshold is 0.
        if _count >= capacity &- (capacity &>> 2) {
            _resize(capacity: Swift.max(capacity &<< 1, 8))
            slot = -1
        } else {
            _ensureUnique()
        }
        let keys = _keys.unsafelyUnwrapped
        if slot < 0 {
            slot = _bucket(key)
            while keys[slot] != 0 { slot = (slot &+ 1) & _mask }
        }
        keys[slot] = key
        _values.unsafelyUnwrapped[slot] = value
        _count &+= 1
    }

    /// Empties the occupied `slot`, whose value has already been moved out
    /// (left uninitialised), shifting later entries of its cluster back so no
    /// probe sequence breaks.
    @inlinable
    mutating func _removeSlot(_ slot: Int) {
        let keys = _keys.unsafelyUnwrapped
        let values = _values.unsafelyUnwrapped
        var hole = slot
        var index = slot
        while true {
            index = (index &+ 1) & _mask
            let key = keys[index]
            if key == 0 { break }
            // The entry may move back into the hole unless its home slot lies
            // (cyclically) after the hole, i.e. within (hole, index].
            let home = _bucket(key)
            if (index &- home) & _mask >= (index &- hole) & _mask {
                keys[hole] = key
                (values + hole).moveInitialize(from: values + index, count: 1)
                hole = index
            }
        }
        keys[hole] = 0
        (values + hole).initialize(to: nil)
        _count &-= 1
    }

    /// Replaces shared storage with a private copy of the same layout, so slot
    /// indices found before the copy stay valid.
    @inlinable
    @inline(never)
    mutating func _copyStorage() {
        let capacity = _mask &+ 1
        let copy = _StreamIDMapStorage<Value>(capacity: capacity)
        let keys = _keys.unsafelyUnwrapped
        let values = _values.unsafelyUnwrapped
        copy.keys.update(from: keys, count: capacity)
        copy.values.update(from: values, count: capacity)
        _storage = copy
        _keys = copy.keys
        _values = copy.values
    }

    /// Rehashes into new storage of `capacity` slots, moving the values when
    /// the old storage is not shared and copying them when it is.
    @inlinable
    @inline(never)
    mutating func _resize(capacity: Int) {
        let storage = _StreamIDMapStorage<Value>(capacity: capacity)
        let newKeys = storage.keys
        let newValues = storage.values
        let newMask = capacity &- 1
        let newShift = newMask.leadingZeroBitCount
        if _storage != nil {
            let moving = isKnownUniquelyReferenced(&_storage)
            let keys = _keys.unsafelyUnwrapped
            let values = _values.unsafelyUnwrapped
            for index in 0..._mask where keys[index] != 0 {
                let key = keys[index]
                var slot = Self._bucket(key, shift: newShift)
                while newKeys[slot] != 0 { slot = (slot &+ 1) & newMask }
                newKeys[slot] = key
                newValues[slot] = moving ? values[index].take() : values[index]
            }
        }
        _storage = storage
        _keys = newKeys
        _values = newValues
        _mask = newMask
        _shift = newShift
    }
}

extension StreamIDMap: Sequence {
    public typealias Element = (key: Int32, value: Value)

    /// Iterates a snapshot: mutating the map meanwhile copies its storage.
    public struct Iterator: IteratorProtocol {
        @usableFromInline let _storage: _StreamIDMapStorage<Value>?
        @usableFromInline var _index: Int

        @inlinable
        init(_ storage: _StreamIDMapStorage<Value>?) {
            _storage = storage
            _index = 0
        }

        @inlinable
        public mutating func next() -> (key: Int32, value: Value)? {
            guard let storage = _storage else { return nil }
            while _index < storage.capacity {
                let index = _index
                _index &+= 1
                let key = storage.keys[index]
                if key != 0 { return (key, storage.values[index].unsafelyUnwrapped) }
            }
            return nil
        }
    }

    @inlinable
    public func makeIterator() -> Iterator {
        Iterator(_count == 0 ? nil : _storage)
    }

    @inlinable
    public var underestimatedCount: Int { _count }
}

extension StreamIDMap: ExpressibleByDictionaryLiteral {
    /// A map of the given pairs; a repeated stream ID keeps its last value.
    @inlinable
    public init(dictionaryLiteral elements: (Int32, Value)...) {
        self.init()
        for (streamID, value) in elements { updateValue(value, forKey: streamID) }
    }
}

extension StreamIDMap: CustomStringConvertible {
    public var description: String {
        "[" + map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "]"
    }
}

// Copy-on-write like Array: a map is only ever mutated through a unique reference.
extension StreamIDMap: @unchecked Sendable where Value: Sendable {}

/// The slots of a ``StreamIDMap``: `capacity` keys then `capacity` values in one
/// allocation. Every slot is initialised; a value is nil exactly where its key is 0.
@usableFromInline
final class _StreamIDMapStorage<Value> {
    @usableFromInline let keys: UnsafeMutablePointer<Int32>
    @usableFromInline let values: UnsafeMutablePointer<Value?>
    @usableFromInline let capacity: Int

    @inlinable
    init(capacity: Int) {
        let alignment = Swift.max(MemoryLayout<Int32>.alignment, MemoryLayout<Value?>.alignment)
        let valuesOffset = (capacity * MemoryLayout<Int32>.stride + alignment - 1) & ~(alignment - 1)
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: valuesOffset + capacity * MemoryLayout<Value?>.stride,
            alignment: alignment
        )
        keys = raw.bindMemory(to: Int32.self, capacity: capacity)
        keys.initialize(repeating: 0, count: capacity)
        values = (raw + valuesOffset).bindMemory(to: Value?.self, capacity: capacity)
        values.initialize(repeating: nil, count: capacity)
        self.capacity = capacity
    }

    deinit {
        values.deinitialize(count: capacity)
        UnsafeMutableRawPointer(keys).deallocate()
    }
}

/// Mixed into every stream ID before hashing. Clients choose their stream IDs;
/// without a secret they could pick IDs that all land in one bucket and make
/// every lookup on their connection walk a long cluster.
@usableFromInline
let streamIDHashSeed = UInt64.random(in: 0...UInt64.max)
