import LDLMCore
import XCTest

final class LockKeyTests: XCTestCase {
    func testDescriptionParsesBackToTheSameKey() {
        let generator = LockKeyGenerator()
        for _ in 0..<1000 {
            let key = generator.next()
            XCTAssertEqual(LockKey(key.description), key)
        }
        let edges = [
            LockKey(high: 0, low: 0),
            LockKey(high: .max, low: .max),
            LockKey(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210),
        ]
        for key in edges {
            XCTAssertEqual(LockKey(key.description), key)
        }
    }

    func testDescriptionIsTheUUIDTextLayout() {
        let key = LockKey(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)

        XCTAssertEqual(key.description, "01234567-89ab-cdef-fedc-ba9876543210")
        XCTAssertEqual(LockKey(high: 0, low: 0).description, "00000000-0000-0000-0000-000000000000")
    }

    func testUppercaseHexParsesToTheSameKey() {
        let key = unheldKey()

        XCTAssertEqual(LockKey(key.description.uppercased()), key)
    }

    func testMalformedTextDoesNotParse() {
        let valid = "01234567-89ab-cdef-fedc-ba9876543210"
        XCTAssertNotNil(LockKey(valid))
        let invalid = [
            "",
            String(valid.dropLast()),
            valid + "0",
            " " + valid.dropLast(),
            valid.replacingOccurrences(of: "-", with: ""),
            "0123456789ab-cdef-fedc-ba9876543210-",
            "01234567-89ab-cdef-fedc-ba98765432g0",
            "01234567-89ab-cdef-fedc-ba98765432 0",
            "01234567_89ab_cdef_fedc_ba9876543210",
            "01234567-89ab-cdef-fedc+ba9876543210",
            "0123456789-ab-cdef-fedc-ba98765432",
            "{1234567-89ab-cdef-fedc-ba98765432}",
            // 36 characters, but the é takes two bytes.
            "0123456\u{E9}-89ab-cdef-fedc-ba9876543210",
            // 36 bytes with every dash in place, but one "digit" is a two-byte é.
            "012345\u{E9}-89ab-cdef-fedc-ba9876543210",
            // Fullwidth digits are not ASCII hex.
            "\u{FF10}1234567-89ab-cdef-fedc-ba9876543210",
        ]
        for text in invalid {
            XCTAssertNil(LockKey(text), "\(text.debugDescription) should not parse")
        }
    }

    func testOnlyHexDigitsParseInEveryDigitPosition() {
        let valid = Array("01234567-89ab-cdef-fedc-ba9876543210".utf8)
        let hexDigits = Set("0123456789abcdefABCDEF".utf8)
        for position in valid.indices where valid[position] != UInt8(ascii: "-") {
            for byte in UInt8(0x20)...UInt8(0x7E) {
                var text = valid
                text[position] = byte
                let parsed = LockKey(String(decoding: text, as: UTF8.self))
                XCTAssertEqual(parsed != nil, hexDigits.contains(byte), "\(UnicodeScalar(byte)) at \(position)")
            }
        }
    }
}
