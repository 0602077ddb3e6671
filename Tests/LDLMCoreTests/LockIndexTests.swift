import XCTest

@testable import LDLMCore

final class LockIndexTests: XCTestCase {
    func testFindsEveryLiveRecordAfterRandomInsertsAndRemovals() {
        var index = LockIndex()
        var model: [String: LockRecord] = [:]
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<40_000 {
            let name = "lock-\(generator.below(3_000))"
            if let record = model[name], generator.below(2) == 0 {
                index.remove(record)
                model.removeValue(forKey: name)
            } else if model[name] == nil {
                let record = LockRecord.make(name: name, size: 1)
                index.insert(record)
                model[name] = record
            }
            XCTAssertEqual(index.count, model.count)
        }
        for suffix in 0..<3_000 {
            let name = "lock-\(suffix)"
            XCTAssertTrue(index.find(name) === model[name], name)
        }
    }

    func testRemovingAReplacedRecordLeavesTheNewOneAlone() {
        var index = LockIndex()
        let old = LockRecord.make(name: "job", size: 1)
        index.insert(old)
        index.remove(old)
        let new = LockRecord.make(name: "job", size: 2)
        index.insert(new)
        index.remove(old)
        XCTAssertTrue(index.find("job") === new)
        XCTAssertEqual(index.count, 1)
    }

    func testCanonicallyEquivalentSpellingsAreDifferentNames() {
        var index = LockIndex()
        let composed = LockRecord.make(name: "caf\u{E9}", size: 1)
        index.insert(composed)
        XCTAssertNil(index.find("cafe\u{301}"))
        XCTAssertTrue(index.find("caf\u{E9}") === composed)
    }

    /// Reference values: CPython's `hash(bytes)` with PYTHONHASHSEED=0 is SipHash-1-3 under a zero key.
    func testNameHashIsSipHash13() {
        let expected: [(String, UInt64)] = [
            ("a", 4_644_417_185_603_328_019),
            ("lock-12345678", 472_602_995_110_716_659),
            ("0123456789abcdef01234567-89abcdef0123", 16_251_540_999_868_078_932),
        ]
        for (name, value) in expected {
            var name = name
            XCTAssertEqual(name.withUTF8 { LockIndex.sipHash13($0, key: (0, 0)) }, value, name)
        }
    }
}
