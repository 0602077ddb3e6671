import LDLMCore
import XCTest

final class LockKeyGeneratorTests: XCTestCase {
    /// Enough keys to empty the buffer several times, ending partway into a refill.
    private let keyCount = 5 * LockKeyGenerator.keysPerRefill + 3

    func testKeysAcrossSeveralRefillsDiffer() {
        let generator = LockKeyGenerator()
        var keys = Set<LockKey>()
        for _ in 0..<keyCount {
            keys.insert(generator.next())
        }

        XCTAssertEqual(keys.count, keyCount)
    }

    func testKeysAcrossSeveralRefillsAreVersion4UUIDs() {
        let generator = LockKeyGenerator()
        let hex = Set("0123456789abcdef")
        for _ in 0..<keyCount {
            let key = generator.next()
            XCTAssertEqual(key.high & 0xF000, 0x4000, "version 4 in \(key)")
            XCTAssertEqual(key.low >> 62, 0b10, "RFC 4122 variant in \(key)")

            let text = Array(key.description)
            XCTAssertEqual(text.count, 36)
            for (offset, character) in text.enumerated() {
                if [8, 13, 18, 23].contains(offset) {
                    XCTAssertEqual(character, "-")
                } else {
                    XCTAssertTrue(hex.contains(character), "\(String(text)) has \(character)")
                }
            }
            XCTAssertEqual(text[14], "4", "version nibble")
            XCTAssertTrue("89ab".contains(text[19]), "RFC 4122 variant in \(String(text))")
            XCTAssertEqual(LockKey(key.description), key, "text form parses back")
        }
    }

    /// Only the 6 version and variant bits are fixed: each of the other 122
    /// takes both values. Fails by chance with probability about 122 / 2^1000.
    func testEveryOtherBitVaries() {
        let generator = LockKeyGenerator()
        var highOnes: UInt64 = 0, highZeros: UInt64 = 0, lowOnes: UInt64 = 0, lowZeros: UInt64 = 0
        for _ in 0..<1000 {
            let key = generator.next()
            highOnes |= key.high
            highZeros |= ~key.high
            lowOnes |= key.low
            lowZeros |= ~key.low
        }

        XCTAssertEqual(highOnes, ~UInt64(0xB000), "only the version bits are fixed in the high word")
        XCTAssertEqual(highZeros, ~UInt64(0x4000))
        XCTAssertEqual(lowOnes, ~(UInt64(0x4) << 60), "only the variant bits are fixed in the low word")
        XCTAssertEqual(lowZeros, ~(UInt64(0x8) << 60))
    }

    func testSeparateGeneratorsMakeDifferentKeys() {
        let first = LockKeyGenerator()
        let second = LockKeyGenerator()
        let firstKeys = Set((0..<10).map { _ in first.next() })
        let secondKeys = Set((0..<10).map { _ in second.next() })

        XCTAssertTrue(firstKeys.isDisjoint(with: secondKeys))
    }
}
