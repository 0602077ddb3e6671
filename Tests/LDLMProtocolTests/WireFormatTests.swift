import LDLMProtocol
import XCTest

final class WireFormatTests: XCTestCase {
    // MARK: Known bytes

    func testLockRequestNameIsField1() throws {
        XCTAssertEqual(LockRequest(name: "a").serializedBytes(), [0x0a, 0x01, 0x61])
        XCTAssertEqual(try LockRequest(serializedBytes: [0x0a, 0x01, 0x61]), LockRequest(name: "a"))
    }

    func testLockTimeoutIsField100WithTwoByteTag() throws {
        XCTAssertEqual(Wire.tag(100, wireType: 0), [0xa0, 0x06])
        XCTAssertEqual(LockRequest(name: "a", lockTimeoutSeconds: 5).serializedBytes(), [0x0a, 0x01, 0x61, 0xa0, 0x06, 0x05])
        XCTAssertEqual(try LockRequest(serializedBytes: [0xa0, 0x06, 0x05]), LockRequest(name: "", lockTimeoutSeconds: 5))
        XCTAssertEqual(try TryLockRequest(serializedBytes: [0xa0, 0x06, 0x05]).lockTimeoutSeconds, 5)
        XCTAssertEqual(try RenewRequest(serializedBytes: [0xa0, 0x06, 0x05]).lockTimeoutSeconds, 5)
    }

    func testHandEncodedLockRequestInAnyFieldOrderDecodes() throws {
        let bytes = Wire.int32(100, 60) + Wire.int32(4, 2) + Wire.string(1, "jobs") + Wire.int32(3, 10)
        XCTAssertEqual(try LockRequest(serializedBytes: bytes), LockRequest(name: "jobs", waitTimeoutSeconds: 10, lockTimeoutSeconds: 60, size: 2))
    }

    func testNegativeInt32IsATenByteVarint() {
        XCTAssertEqual(LockRequest(name: "", waitTimeoutSeconds: -1).serializedBytes(),
                       [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
    }

    func testLockResponseBytes() throws {
        let plain: [UInt8] = [0x08, 0x01, 0x12, 0x01, 0x61, 0x1a, 0x01, 0x6b]
        XCTAssertEqual(LockResponse(locked: true, name: "a", key: "k").serializedBytes(), plain)

        let withError = Wire.string(2, "a") + Wire.bytes(4, Wire.int32(1, 4) + Wire.string(2, "x"))
        let response = LockResponse(locked: false, name: "a", error: LDLMError(code: .notLocked, message: "x"))
        XCTAssertEqual(response.serializedBytes(), withError)
        XCTAssertEqual(try LockResponse(serializedBytes: withError), response)
    }

    func testFencingTokenIsUInt64Field1000() throws {
        XCTAssertEqual(Wire.tag(1000, wireType: 0), [0xc0, 0x3e])
        let token: UInt64 = 1_764_500_000_000_001
        let bytes = Wire.bool(1, true) + Wire.string(2, "a") + Wire.string(3, "k") + Wire.tag(1000, wireType: 0) + Wire.varint(token)
        let response = LockResponse(locked: true, name: "a", key: "k", fencingToken: token)
        XCTAssertEqual(response.serializedBytes(), bytes)
        XCTAssertEqual(try LockResponse(serializedBytes: bytes), response)
        XCTAssertEqual(try LockResponse(serializedBytes: Wire.tag(1000, wireType: 0) + Wire.varint(.max)).fencingToken, .max)
    }

    func testProto3DefaultsAreLeftOffTheWire() {
        XCTAssertEqual(RenewRequest(name: "", key: "", lockTimeoutSeconds: 0).serializedBytes(), [])
        XCTAssertEqual(LockResponse(locked: false, name: "").serializedBytes(), [])
        XCTAssertEqual(UnlockResponse(unlocked: false, name: "").serializedBytes(), [])
    }

    func testRenewRequestReadsTheRefreshLockRequestLayout() throws {
        // RefreshLockRequest: name = 1, key = 2, lock_timeout_seconds = 100.
        let refreshLock = Wire.string(1, "report") + Wire.string(2, "key-1") + Wire.int32(100, 90)
        XCTAssertEqual(try RenewRequest(serializedBytes: refreshLock), RenewRequest(name: "report", key: "key-1", lockTimeoutSeconds: 90))
        XCTAssertEqual(RenewRequest(name: "report", key: "key-1", lockTimeoutSeconds: 90).serializedBytes(), refreshLock)
    }

    // MARK: Lenient decoding

    func testEmptyBytesDecodeToDefaults() throws {
        XCTAssertEqual(try LockRequest(serializedBytes: []), LockRequest(name: ""))
        XCTAssertEqual(try TryLockRequest(serializedBytes: []), TryLockRequest(name: ""))
        XCTAssertEqual(try LockResponse(serializedBytes: []), LockResponse(locked: false, name: "", key: "", error: nil))
        XCTAssertEqual(try UnlockRequest(serializedBytes: []), UnlockRequest(name: "", key: ""))
        XCTAssertEqual(try UnlockResponse(serializedBytes: []), UnlockResponse(unlocked: false, name: "", error: nil))
        XCTAssertEqual(try RenewRequest(serializedBytes: []), RenewRequest(name: "", key: "", lockTimeoutSeconds: 0))
    }

    func testUnknownFieldsOfEveryWireTypeAreSkipped() throws {
        let known = Wire.string(1, "a") + Wire.int32(4, 2)
        let unknown = Wire.int32(50, 7) + Wire.fixed64(51, 0xDEAD_BEEF) + Wire.fixed32(52, 9)
            + Wire.bytes(53, [0xFF, 0x00, 0xC0]) // not a string we know, so not checked as one
            + Wire.bytes(536_870_911, [1, 2])
        XCTAssertEqual(try LockRequest(serializedBytes: unknown + known + unknown), LockRequest(name: "a", size: 2))
    }

    func testUnknownFieldsInsideTheNestedErrorAreSkipped() throws {
        let bytes = Wire.bool(1, true) + Wire.bytes(4, Wire.int32(1, 2) + Wire.bytes(9, [0xFF]) + Wire.string(2, "m"))
        XCTAssertEqual(try LockResponse(serializedBytes: bytes).error, LDLMError(code: .invalidLockKey, message: "m"))
    }

    func testLastOccurrenceOfAFieldWins() throws {
        let bytes = Wire.string(1, "first") + Wire.int32(4, 1) + Wire.string(1, "second") + Wire.int32(4, 2)
        XCTAssertEqual(try LockRequest(serializedBytes: bytes), LockRequest(name: "second", size: 2))
    }

    // MARK: Rejected bytes

    func testInvalidUTF8InNameIsRejected() {
        for payload: [UInt8] in [[0xFF], [0x61, 0xC3], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x61, 0x80, 0x62]] {
            XCTAssertThrowsError(try LockRequest(serializedBytes: Wire.bytes(1, payload)), "\(payload)") { error in
                XCTAssertTrue(error is MessageDecodingError)
            }
        }
    }

    func testInvalidUTF8InEveryStringFieldIsRejected() {
        let bad: [UInt8] = [0x6b, 0xFE]
        XCTAssertThrowsError(try TryLockRequest(serializedBytes: Wire.bytes(1, bad)))
        XCTAssertThrowsError(try UnlockRequest(serializedBytes: Wire.string(1, "n") + Wire.bytes(2, bad)))
        XCTAssertThrowsError(try RenewRequest(serializedBytes: Wire.string(1, "n") + Wire.bytes(2, bad)))
        XCTAssertThrowsError(try LockResponse(serializedBytes: Wire.bytes(3, bad)))
        XCTAssertThrowsError(try UnlockResponse(serializedBytes: Wire.bytes(2, bad)))
        XCTAssertThrowsError(try LockResponse(serializedBytes: Wire.bytes(4, Wire.bytes(2, bad))), "nested Error.message")
    }

    func testNULInAStringIsRejectedRatherThanCuttingTheNameShort() {
        XCTAssertThrowsError(try LockRequest(serializedBytes: Wire.string(1, "jobs\u{0}other"))) { error in
            XCTAssertTrue((error as? MessageDecodingError)?.description.contains("NUL") == true, "\(error)")
        }
        XCTAssertThrowsError(try UnlockRequest(serializedBytes: Wire.string(1, "n") + Wire.string(2, "\u{0}")))
        XCTAssertThrowsError(try UnlockResponse(serializedBytes: Wire.bytes(3, Wire.string(2, "a\u{0}"))), "nested Error.message")
    }

    func testNULOrBadUTF8AnywhereInALongNameIsRejected() {
        let name = [UInt8]("locks/nightly-report".utf8)
        for position in name.indices {
            var withNUL = name
            withNUL[position] = 0
            XCTAssertThrowsError(try LockRequest(serializedBytes: Wire.bytes(1, withNUL)), "NUL at \(position)") { error in
                XCTAssertTrue((error as? MessageDecodingError)?.description.contains("NUL") == true, "\(error)")
            }
            var withBadUTF8 = name
            withBadUTF8[position] = 0xFF
            XCTAssertThrowsError(try LockRequest(serializedBytes: Wire.bytes(1, withBadUTF8)), "0xFF at \(position)") { error in
                XCTAssertTrue((error as? MessageDecodingError)?.description.contains("UTF-8") == true, "\(error)")
            }
        }
        let accented = "locks/réunion-nightly"
        XCTAssertEqual(try LockRequest(serializedBytes: Wire.string(1, accented)).name, accented)
    }

    func testMalformedBytesAreRejected() {
        let malformed: [(String, [UInt8])] = [
            ("lone tag byte with continuation", [0xFF]),
            ("length past the end", [0x0a, 0x05, 0x61]),
            ("varint cut short", [0x18, 0x80]),
            ("varint longer than ten bytes", [0x18] + Array(repeating: 0xFF, count: 10) + [0x01]),
            ("field number zero", [0x00, 0x01]),
            ("wire type 7", [0x0f, 0x00]),
            ("start group", [0x0b]),
            ("fixed32 cut short", [0x2d, 0x01, 0x02]),
            ("nested error truncated", Wire.tag(4, wireType: 2) + [0x04, 0x08, 0x01]),
            ("text", Array("hello world, not protobuf".utf8)),
        ]
        for (what, bytes) in malformed {
            XCTAssertThrowsError(try LockResponse(serializedBytes: bytes), what) { error in
                XCTAssertTrue(error is MessageDecodingError, what)
            }
        }
    }

    func testUnsafeBufferEntryPointDecodesTheSameAsTheArrayOne() throws {
        let bytes = LockRequest(name: "buffer", size: 2).serializedBytes()
        let decoded = try bytes.withUnsafeBytes { try LockRequest(serializedBytes: $0) }
        XCTAssertEqual(decoded, LockRequest(name: "buffer", size: 2))
    }
}
