import LDLMProtocol
import XCTest

final class MessageRoundTripTests: XCTestCase {
    func testLockRequestRoundTripsWithOptionalFieldsAbsentZeroAndSet() throws {
        let requests = [
            LockRequest(name: "plain"),
            LockRequest(name: "zeros", waitTimeoutSeconds: 0, lockTimeoutSeconds: 0, size: 0),
            LockRequest(name: "all", waitTimeoutSeconds: 30, lockTimeoutSeconds: 600, size: 3),
            LockRequest(name: "negative", waitTimeoutSeconds: -1, lockTimeoutSeconds: Int32.min, size: -5),
            LockRequest(name: "extremes", waitTimeoutSeconds: Int32.max, lockTimeoutSeconds: 1),
            LockRequest(name: "only size", size: 1),
            LockRequest(name: ""),
        ]
        for request in requests {
            XCTAssertEqual(try LockRequest(serializedBytes: request.serializedBytes()), request)
        }
    }

    func testOptionalFieldSetToZeroStaysPresent() throws {
        let request = LockRequest(name: "a", size: 0)
        XCTAssertEqual(request.serializedBytes(), Wire.string(1, "a") + Wire.int32(4, 0))

        let decoded = try LockRequest(serializedBytes: request.serializedBytes())
        XCTAssertEqual(decoded.size, 0)
        XCTAssertNil(decoded.waitTimeoutSeconds)
        XCTAssertNil(decoded.lockTimeoutSeconds)

        let tryLock = try TryLockRequest(serializedBytes: TryLockRequest(name: "a", lockTimeoutSeconds: 0).serializedBytes())
        XCTAssertEqual(tryLock.lockTimeoutSeconds, 0)
        XCTAssertNil(tryLock.size)
    }

    func testTryLockRequestRoundTrips() throws {
        for request in [
            TryLockRequest(name: "t"),
            TryLockRequest(name: "t", lockTimeoutSeconds: 0, size: 0),
            TryLockRequest(name: "t", lockTimeoutSeconds: 15, size: 8),
            TryLockRequest(name: "t", lockTimeoutSeconds: -3),
        ] {
            XCTAssertEqual(try TryLockRequest(serializedBytes: request.serializedBytes()), request)
        }
    }

    func testLockResponseRoundTripsWithAndWithoutError() throws {
        var responses = [
            LockResponse(locked: true, name: "db", key: "6f1c1f5e-key"),
            LockResponse(locked: true, name: "db", key: "6f1c1f5e-key", fencingToken: 1_764_500_000_000_001),
            LockResponse(locked: false, name: "db"),
            LockResponse(locked: false, name: "db", key: "", error: LDLMError(code: .unknown, message: "")),
        ]
        for code in ErrorCode.allCases {
            responses.append(LockResponse(locked: false, name: "db", key: "k", error: LDLMError(code: code, message: "because \(code)")))
        }
        for response in responses {
            XCTAssertEqual(try LockResponse(serializedBytes: response.serializedBytes()), response)
        }
    }

    func testEmptyErrorIsStillPresentAfterDecoding() throws {
        let response = LockResponse(locked: false, name: "x", error: LDLMError(code: .unknown, message: ""))
        XCTAssertNotNil(try LockResponse(serializedBytes: response.serializedBytes()).error)
        XCTAssertNil(try LockResponse(serializedBytes: LockResponse(locked: false, name: "x").serializedBytes()).error)
    }

    func testUnlockMessagesRoundTrip() throws {
        for request in [UnlockRequest(name: "n", key: "k"), UnlockRequest(name: "", key: "")] {
            XCTAssertEqual(try UnlockRequest(serializedBytes: request.serializedBytes()), request)
        }
        for response in [
            UnlockResponse(unlocked: true, name: "n"),
            UnlockResponse(unlocked: false, name: "n", error: LDLMError(code: .invalidLockKey, message: "wrong key")),
            UnlockResponse(unlocked: false, name: "n", error: LDLMError(code: .unknown, message: "")),
        ] {
            XCTAssertEqual(try UnlockResponse(serializedBytes: response.serializedBytes()), response)
        }
    }

    func testRenewRequestRoundTrips() throws {
        for request in [
            RenewRequest(name: "n", key: "k", lockTimeoutSeconds: 60),
            RenewRequest(name: "n", key: "k", lockTimeoutSeconds: 0),
            RenewRequest(name: "n", key: "k", lockTimeoutSeconds: -60),
        ] {
            XCTAssertEqual(try RenewRequest(serializedBytes: request.serializedBytes()), request)
        }
    }

    func testNonASCIIAndLongStringsRoundTrip() throws {
        let long = String(repeating: "ß", count: 5_000)
        for name in ["日本語のロック", "🔒/db/primary", long, "tab\there", "é\u{301}"] {
            let request = UnlockRequest(name: name, key: name)
            XCTAssertEqual(try UnlockRequest(serializedBytes: request.serializedBytes()), request)
        }
    }

    func testUnknownErrorCodeFromTheWireReadsAsUnknown() throws {
        let bytes = Wire.string(2, "n") + Wire.bytes(4, Wire.int32(1, 99) + Wire.string(2, "from a newer server"))
        let response = try LockResponse(serializedBytes: bytes)
        XCTAssertEqual(response.error, LDLMError(code: .unknown, message: "from a newer server"))
    }
}
