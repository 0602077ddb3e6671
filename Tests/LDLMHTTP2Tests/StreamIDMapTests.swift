@testable import LDLMHTTP2
import LDLMTestSupport
import XCTest

final class StreamIDMapTests: XCTestCase {
    // MARK: Basics

    func testEmptyMapAllocatesNothingAndFindsNothing() {
        var map = StreamIDMap<Payload>()
        XCTAssertNil(map._storage)
        XCTAssertTrue(map.isEmpty)
        XCTAssertEqual(map.count, 0)
        XCTAssertNil(map[1])
        XCTAssertNil(map.removeValue(forKey: 1))
        XCTAssertNil(map.modifyValue(forKey: 1) { _ in XCTFail("no entry to modify") })
        map[3]?.number += 1
        map[5] = nil
        map.removeAll()
        XCTAssertEqual(Array(map.values).count, 0)
        XCTAssertNil(map._storage, "reads, removals and no-op modifications allocate nothing")
        Self.checkInvariants(map)
    }

    func testNonPositiveStreamIDsAreNeverFound() {
        var map: StreamIDMap<Int> = [1: 10, 3: 30]
        for key: Int32 in [0, -1, -3, .min] {
            XCTAssertNil(map[key])
            XCTAssertNil(map.removeValue(forKey: key))
            XCTAssertNil(map.modifyValue(forKey: key) { $0 += 1 })
            map[key]? += 1
        }
        XCTAssertEqual(map.count, 2)
        XCTAssertEqual(map[1], 10)
        XCTAssertEqual(map[3], 30)
        Self.checkInvariants(map)
    }

    func testSubscriptUpdateValueAndRemoveValue() {
        var map = StreamIDMap<String>()
        map[1] = "one"
        XCTAssertEqual(map.updateValue("three", forKey: 3), nil)
        XCTAssertEqual(map.updateValue("THREE", forKey: 3), "three")
        map[5] = "five"
        XCTAssertEqual(map.count, 3)
        XCTAssertEqual(map[3], "THREE")
        map[5] = nil
        XCTAssertNil(map[5])
        XCTAssertEqual(map.removeValue(forKey: 1), "one")
        XCTAssertNil(map.removeValue(forKey: 1))
        XCTAssertEqual(map.count, 1)
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: map.map { ($0.key, $0.value) }), [3: "THREE"])
        XCTAssertEqual(map.description, "[3: THREE]")
        Self.checkInvariants(map)
    }

    // MARK: Randomised comparison with Dictionary

    func testRandomisedOperationsMatchDictionary() {
        var generator = SplitMix64(seed: 0x5EED_1D1A)
        let pools = Self.collidingKeyPools()
        // Arbitrary IDs across the whole range, drawn from a fixed set so that
        // removals hit them too and the population stays bounded.
        let scattered = (0..<1_500).map { _ in Int32.random(in: 1 ... .max, using: &generator) }
        var map = StreamIDMap<Payload>()
        var reference: [Int32: Payload] = [:]
        var nextOdd: Int32 = 1
        var largestCapacity = 0
        var removeAlls = 0

        func randomKey() -> Int32 {
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<4:
                // A live window of client streams: the newest few odd IDs.
                let back = Int32.random(in: 0..<24, using: &generator)
                return Swift.max(1, nextOdd - 2 * back)
            case 4..<6:
                return Int32.random(in: 1...80, using: &generator)
            case 6..<9:
                // Keys sharing a home slot (first, last or middle) at every capacity.
                let pool = pools[Int.random(in: 0..<pools.count, using: &generator)]
                return pool[Int.random(in: 0..<pool.count, using: &generator)]
            default:
                return scattered[Int.random(in: 0..<scattered.count, using: &generator)]
            }
        }

        for step in 0..<150_000 {
            // Swing the population up and down so the table grows past several
            // capacities and then churns at low load with long-lived clusters.
            let phase = (step / 15_000) % 2
            let insertWeight = phase == 0 ? 6 : 3
            let key = randomKey()
            let operation = Int.random(in: 0..<16, using: &generator)
            switch operation {
            case 0..<insertWeight:
                let value = Payload(number: step)
                if Bool.random(using: &generator) {
                    XCTAssertEqual(map.updateValue(value, forKey: key), reference.updateValue(value, forKey: key))
                } else {
                    map[key] = value
                    reference[key] = value
                }
                if key == nextOdd { nextOdd += 2 }
            case insertWeight..<9:
                XCTAssertEqual(map[key], reference[key], "lookup of \(key) at step \(step)")
            case 9..<12:
                if Bool.random(using: &generator) {
                    XCTAssertEqual(map.removeValue(forKey: key), reference.removeValue(forKey: key))
                } else {
                    map[key] = nil
                    reference[key] = nil
                }
            case 12:
                let result = map.modifyValue(forKey: key) { value -> Int in
                    value.number += 1
                    value.items.append(step)
                    return value.items.count
                }
                let expected: Int?
                if reference[key] != nil {
                    reference[key]!.number += 1
                    reference[key]!.items.append(step)
                    expected = reference[key]!.items.count
                } else {
                    expected = nil
                }
                XCTAssertEqual(result, expected)
            case 13:
                // The subscript's in-place path, including insertion and removal through it.
                switch Int.random(in: 0..<3, using: &generator) {
                case 0:
                    map[key]?.items.append(-step)
                    reference[key]?.items.append(-step)
                case 1:
                    Self.mutate(&map[key], step: step)
                    Self.mutate(&reference[key], step: step)
                default:
                    Self.clear(&map[key])
                    Self.clear(&reference[key])
                }
            case 14:
                // Copy, then mutate the copy: the original must not change.
                var copy = map
                copy[key] = Payload(number: -1)
                _ = copy.removeValue(forKey: nextOdd - 2)
                copy.modifyValue(forKey: 1) { $0.number = -2 }
                for probe in [key, nextOdd - 2, 1] {
                    XCTAssertEqual(map[probe], reference[probe], "the original after mutating a copy, step \(step)")
                }
                if step % 16 == 0 { Self.checkInvariants(copy) }
            default:
                if Int.random(in: 0..<2_000, using: &generator) == 0 {
                    map.removeAll()
                    reference.removeAll()
                    removeAlls += 1
                } else {
                    XCTAssertEqual(map[key] != nil, reference[key] != nil)
                }
            }
            XCTAssertEqual(map.count, reference.count)
            largestCapacity = Swift.max(largestCapacity, map._mask + 1)
            if step % 1_000 == 0 || step < 2_000 {
                Self.checkInvariants(map)
                XCTAssertEqual(Self.contents(map), reference, "contents at step \(step)")
            }
        }
        Self.checkInvariants(map)
        XCTAssertEqual(Self.contents(map), reference)
        XCTAssertGreaterThanOrEqual(largestCapacity, 512, "the run grew the table past several capacities")
        XCTAssertGreaterThan(removeAlls, 0)
    }

    // MARK: Collisions, growth and backward shift

    func testBackwardShiftAcrossTheWrapAround() {
        var map = StreamIDMap<Int>()
        map[1] = 1
        XCTAssertEqual(map._mask + 1, 8)
        map[1] = nil
        let shift = map._shift
        func keys(home: Int, count: Int) -> [Int32] {
            var found: [Int32] = []
            var key: Int32 = 1
            while found.count < count {
                if StreamIDMap<Int>._bucket(key, shift: shift) == home { found.append(key) }
                key += 1
            }
            return found
        }
        let lastHome = keys(home: 7, count: 3)  // slots 7, 0, 1
        let firstHome = keys(home: 0, count: 1)  // slot 2
        let secondHome = keys(home: 1, count: 1)  // slot 3
        for key in lastHome + firstHome + secondHome { map[key] = Int(key) }
        XCTAssertEqual(map._mask + 1, 8, "five entries stay below the growth threshold of six")
        XCTAssertEqual(Self.slots(map), [lastHome[1], lastHome[2], firstHome[0], secondHome[0], 0, 0, 0, lastHome[0]])
        Self.checkInvariants(map)

        // Removing the entry in the last slot pulls the wrapped ones back across the end.
        XCTAssertEqual(map.removeValue(forKey: lastHome[0]), Int(lastHome[0]))
        XCTAssertEqual(Self.slots(map), [lastHome[2], firstHome[0], secondHome[0], 0, 0, 0, 0, lastHome[1]])
        Self.checkInvariants(map)
        for key in lastHome.dropFirst() + firstHome + secondHome { XCTAssertEqual(map[key], Int(key)) }
        XCTAssertNil(map[lastHome[0]])

        // An entry already in its home slot stays put.
        map[lastHome[0]] = Int(lastHome[0])
        XCTAssertEqual(Self.slots(map), [lastHome[2], firstHome[0], secondHome[0], 0, 0, 0, 0, lastHome[1]].enumerated().map {
            $0.offset == 3 ? lastHome[0] : $0.element
        })
        map[firstHome[0]] = nil
        XCTAssertEqual(Self.slots(map), [lastHome[2], secondHome[0], lastHome[0], 0, 0, 0, 0, lastHome[1]])
        Self.checkInvariants(map)
        XCTAssertEqual(map.count, 4)
        for key in [lastHome[0], lastHome[1], lastHome[2], secondHome[0]] { XCTAssertEqual(map[key], Int(key)) }
    }

    func testGrowthKeepsEveryEntryAndTheLoadBelowThreeQuarters() {
        var map = StreamIDMap<Payload>()
        var capacities: [Int] = []
        var key: Int32 = 1
        for _ in 0..<5_000 {
            map[key] = Payload(number: Int(key))
            if capacities.last != map._mask + 1 { capacities.append(map._mask + 1) }
            XCTAssertLessThanOrEqual(map.count * 4, (map._mask + 1) * 3)
            key += 2
        }
        XCTAssertEqual(capacities, [8, 16, 32, 64, 128, 256, 512, 1_024, 2_048, 4_096, 8_192])
        Self.checkInvariants(map)
        let end = key
        for key in stride(from: Int32(1), to: end, by: 2) {
            XCTAssertEqual(map[key]?.number, Int(key))
            XCTAssertNil(map[key + 1])
        }
        for key in stride(from: Int32(1), to: end, by: 4) { XCTAssertNotNil(map.removeValue(forKey: key)) }
        XCTAssertEqual(map.count, 2_500)
        XCTAssertEqual(map._mask + 1, 8_192, "removal never shrinks the table")
        Self.checkInvariants(map)
    }

    func testRemoveAllKeepsCapacityUnlessShared() {
        let tracker = LifetimeTracker()
        var map = StreamIDMap<Payload>()
        for key in stride(from: Int32(1), through: 99, by: 2) { map[key] = Payload(number: 0, tracker: tracker) }
        XCTAssertEqual(tracker.live, 50)
        let capacity = map._mask + 1
        map.removeAll()
        XCTAssertEqual(tracker.live, 0, "removeAll releases every value")
        XCTAssertTrue(map.isEmpty)
        XCTAssertEqual(map._mask + 1, capacity)
        XCTAssertNil(map[1])
        map[7] = Payload(number: 7, tracker: tracker)
        XCTAssertEqual(map[7]?.number, 7)
        Self.checkInvariants(map)

        let copy = map
        map.removeAll()
        XCTAssertNil(map._storage, "a shared table is let go rather than cleared")
        XCTAssertEqual(copy[7]?.number, 7)
        XCTAssertEqual(tracker.live, 1)
    }

    func testValuesAreReleasedExactlyOnce() {
        let tracker = LifetimeTracker()
        do {
            var map = StreamIDMap<Payload>()
            var generator = SplitMix64(seed: 42)
            for step in 0..<20_000 {
                let key = Int32.random(in: 1...300, using: &generator)
                switch step % 5 {
                case 0, 1: map[key] = Payload(number: step, tracker: tracker)
                case 2: map.removeValue(forKey: key)
                case 3: map[key]?.number += 1
                default:
                    var copy = map
                    copy[key] = nil
                    copy[key &+ 1] = Payload(number: step, tracker: tracker)
                }
                XCTAssertEqual(tracker.live, map.count)
            }
            var iterated = 0
            for (_, _) in map { iterated += 1 }
            XCTAssertEqual(iterated, map.count)
        }
        XCTAssertEqual(tracker.live, 0, "dropping the map releases what it held")
    }

    // MARK: Value semantics

    func testCopiesAreIndependent() {
        var original: StreamIDMap<Payload> = [1: Payload(number: 1), 3: Payload(number: 3), 5: Payload(number: 5)]

        var inserted = original
        inserted[7] = Payload(number: 7)
        var removed = original
        removed[3] = nil
        var modified = original
        modified.modifyValue(forKey: 1) { $0.items.append(100) }
        var subscripted = original
        subscripted[5]?.number = 50
        var cleared = original
        cleared.removeAll()
        var grown = original
        for key in stride(from: Int32(9), through: 99, by: 2) { grown[key] = Payload(number: Int(key)) }

        XCTAssertEqual(Self.contents(original), [1: Payload(number: 1), 3: Payload(number: 3), 5: Payload(number: 5)])
        XCTAssertEqual(inserted.count, 4)
        XCTAssertEqual(removed.count, 2)
        XCTAssertEqual(modified[1]?.items, [100])
        XCTAssertEqual(subscripted[5]?.number, 50)
        XCTAssertTrue(cleared.isEmpty)
        XCTAssertEqual(grown.count, 49)
        for map in [inserted, removed, modified, subscripted, cleared, grown] { Self.checkInvariants(map) }

        // And the other way round: mutating the original leaves a copy alone.
        let snapshot = original
        original[1]?.items.append(1)
        original[3] = nil
        XCTAssertEqual(Self.contents(snapshot), [1: Payload(number: 1), 3: Payload(number: 3), 5: Payload(number: 5)])
        XCTAssertEqual(original[1]?.items, [1])
    }

    func testIterationSeesASnapshotWhileTheMapChanges() {
        var map = StreamIDMap<Int>()
        for key in stride(from: Int32(1), through: 41, by: 2) { map[key] = Int(key) }
        var seen: [Int32: Int] = [:]
        for (key, value) in map {
            map[key] = nil
            map[key + 1_000] = value
            seen[key] = value
        }
        XCTAssertEqual(seen.count, 21)
        XCTAssertTrue(seen.allSatisfy { Int($0.key) == $0.value })
        XCTAssertEqual(map.count, 21)
        XCTAssertEqual(Set(map.values), Set(seen.values))
        XCTAssertTrue(map.allSatisfy { $0.key > 1_000 })
        Self.checkInvariants(map)
    }

    // MARK: In-place mutation

    func testModifyValueMutatesInPlace() {
        var map = StreamIDMap<Payload>()
        var payload = Payload(number: 0)
        payload.items.reserveCapacity(64)
        let buffer = payload.items.withUnsafeBufferPointer { $0.baseAddress }
        map[1] = payload
        payload = Payload(number: 0)  // drop the caller's reference to the buffer

        for item in 0..<32 {
            let unique = map.modifyValue(forKey: 1) { value -> Bool in
                value.items.append(item)
                return isKnownUniquelyReferenced(&value.box)
            }
            XCTAssertEqual(unique, true, "the value is not copied out of the table")
        }
        XCTAssertEqual(map[1]?.items, Array(0..<32))
        func storedBuffer() -> UnsafePointer<Int>? {
            map.modifyValue(forKey: 1) { $0.items.withUnsafeBufferPointer { $0.baseAddress } } ?? nil
        }
        XCTAssertEqual(storedBuffer(), buffer, "appending never reallocated the array: no copy-on-write")

        // The subscript's _modify moves the value out and back without copying it.
        for item in 32..<64 { map[1]?.items.append(item) }
        XCTAssertEqual(storedBuffer(), buffer)
        XCTAssertEqual(map.modifyValue(forKey: 1) { isKnownUniquelyReferenced(&$0.box) }, true)
        XCTAssertEqual(map[1]?.items, Array(0..<64))

        // On a shared table the first modification copies the table, not the caller's view.
        let copy = map
        map.modifyValue(forKey: 1) { $0.number = 99 }
        XCTAssertEqual(copy[1]?.number, 0)
        XCTAssertEqual(map[1]?.number, 99)
    }

    func testModifyValueRethrowsAndKeepsTheEntry() {
        struct Failure: Error {}
        var map: StreamIDMap<Int> = [3: 30]
        XCTAssertThrowsError(try map.modifyValue(forKey: 3) { value in
            value += 1
            throw Failure()
        })
        XCTAssertEqual(map[3], 31)
        Self.checkInvariants(map)
    }

    // MARK: Helpers

    /// Sets of keys that share a home slot in every table up to 4,096 slots:
    /// the first slot, the last slot (their clusters wrap around) and a middle one.
    static func collidingKeyPools() -> [[Int32]] {
        let topBits = 12
        var pools: [Int: [Int32]] = [0: [], (1 << topBits) - 1: [], 1 << (topBits - 1): []]
        var key: Int32 = 1
        while pools.values.contains(where: { $0.count < 24 }) {
            let home = StreamIDMap<Int>._bucket(key, shift: 64 - topBits)
            if pools[home] != nil, pools[home]!.count < 24 { pools[home]!.append(key) }
            key += 1
        }
        return pools.keys.sorted().map { pools[$0]! }
    }

    static func contents<Value>(_ map: StreamIDMap<Value>) -> [Int32: Value] {
        var result: [Int32: Value] = [:]
        for (key, value) in map {
            XCTAssertNil(result.updateValue(value, forKey: key), "key \(key) iterated twice")
        }
        return result
    }

    static func slots<Value>(_ map: StreamIDMap<Value>) -> [Int32] {
        guard let keys = map._keys else { return [] }
        return (0...map._mask).map { keys[$0] }
    }

    /// Every key is reachable from its home slot without crossing an empty
    /// slot, keys are unique, the counts and the load factor agree.
    static func checkInvariants<Value>(_ map: StreamIDMap<Value>, file: StaticString = #filePath, line: UInt = #line) {
        guard let storage = map._storage else {
            XCTAssertEqual(map.count, 0, file: file, line: line)
            XCTAssertNil(map._keys, file: file, line: line)
            XCTAssertEqual(map._mask, -1, file: file, line: line)
            return
        }
        let capacity = map._mask + 1
        XCTAssertEqual(capacity & map._mask, 0, "capacity is a power of two", file: file, line: line)
        XCTAssertEqual(capacity, storage.capacity, file: file, line: line)
        XCTAssertEqual(map._keys, storage.keys, file: file, line: line)
        XCTAssertEqual(map._values, storage.values, file: file, line: line)
        XCTAssertEqual(map._shift, 64 - capacity.trailingZeroBitCount, file: file, line: line)
        XCTAssertLessThanOrEqual(map.count * 4, capacity * 3, file: file, line: line)
        let keys = slots(map)
        let occupied = keys.filter { $0 != 0 }
        XCTAssertEqual(occupied.count, map.count, file: file, line: line)
        XCTAssertEqual(Set(occupied).count, occupied.count, "no duplicate keys", file: file, line: line)
        XCTAssertTrue(occupied.allSatisfy { $0 > 0 }, file: file, line: line)
        for (index, key) in keys.enumerated() where key != 0 {
            var probe = map._bucket(key)
            while probe != index {
                if keys[probe] == 0 {
                    XCTFail("key \(key) in slot \(index) is cut off from its home slot \(map._bucket(key))", file: file, line: line)
                    break
                }
                probe = (probe + 1) & map._mask
            }
            if map[key] == nil { XCTFail("key \(key) in slot \(index) is not found", file: file, line: line) }
        }
    }

    static func mutate(_ value: inout Payload?, step: Int) {
        if value == nil {
            value = Payload(number: step)
        } else {
            value!.number -= 1
        }
    }

    static func clear(_ value: inout Payload?) {
        value = nil
    }
}

extension StreamIDMapTests {
    /// A value with an array and a reference, so copies are observable.
    struct Payload: Equatable {
        var number: Int
        var items: [Int] = []
        var box: Box

        init(number: Int, tracker: LifetimeTracker? = nil) {
            self.number = number
            box = Box(tracker: tracker)
        }

        static func == (lhs: Payload, rhs: Payload) -> Bool {
            lhs.number == rhs.number && lhs.items == rhs.items
        }
    }

    final class Box {
        let tracker: LifetimeTracker?

        init(tracker: LifetimeTracker?) {
            self.tracker = tracker
            tracker?.live += 1
        }

        deinit { tracker?.live -= 1 }
    }

    final class LifetimeTracker {
        var live = 0
    }
}
