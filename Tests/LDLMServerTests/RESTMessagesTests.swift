import Foundation
import LDLMCore
import LDLMProtocol
import XCTest

@testable import LDLMServer

final class RESTMessagesTests: XCTestCase {
    private func decodeTryLock(_ json: String) throws -> RESTMessages.TryLock {
        try RESTMessages.decode(RESTMessages.TryLock.self, from: Array(json.utf8))
    }

    private func decodingError(_ json: String) -> String? {
        do {
            _ = try decodeTryLock(json)
            return nil
        } catch {
            return (error as? RESTMessages.DecodingError)?.message
        }
    }

    func testRequestsReadProtoAndJSONFieldNamesAsProto3JSONDoes() throws {
        XCTAssertEqual(
            try decodeTryLock(#"{"name": "a", "lock_timeout_seconds": 120, "size": 2}"#),
            RESTMessages.TryLock(name: "a", lockTimeoutSeconds: 120, size: 2)
        )
        XCTAssertEqual(try decodeTryLock(#"{"name": "a", "lockTimeoutSeconds": "30"}"#), RESTMessages.TryLock(name: "a", lockTimeoutSeconds: 30))
        XCTAssertEqual(try decodeTryLock(#"{"name": "a", "size": null, "unknown": [1, {"x": 2}]}"#), RESTMessages.TryLock(name: "a"))
        XCTAssertEqual(
            try RESTMessages.decode(RESTMessages.Renew.self, from: Array(#"{"name":"n","key":"k","lock_timeout_seconds":5}"#.utf8)),
            RESTMessages.Renew(name: "n", key: "k", lockTimeoutSeconds: 5)
        )
        XCTAssertEqual(
            try RESTMessages.decode(RESTMessages.Unlock.self, from: Array(#"{"name":"n","key":"k"}"#.utf8)),
            RESTMessages.Unlock(name: "n", key: "k")
        )
    }

    func testAnEmptyBodyIsTheEmptyMessageAsInGrpcGateway() throws {
        XCTAssertEqual(try decodeTryLock(""), RESTMessages.TryLock())
        XCTAssertEqual(try decodeTryLock(" \n"), RESTMessages.TryLock())
    }

    func testBadBodiesSayWhatIsWrong() {
        XCTAssertEqual(decodingError(#"{"name": "a""#), "request body is not valid JSON")
        XCTAssertEqual(decodingError("name=a"), "request body is not valid JSON")
        XCTAssertEqual(decodingError(#"{"name": "a"} trailing"#), "request body is not valid JSON")
        XCTAssertEqual(decodingError(#"["a"]"#), "request body must be a JSON object")
        XCTAssertEqual(decodingError(#"{"name": 5}"#), "invalid value for string field name")
        XCTAssertEqual(decodingError(#"{"size": true}"#), "invalid value for int32 field size")
        XCTAssertEqual(decodingError(#"{"size": 1.5}"#), "invalid value for int32 field size")
        XCTAssertEqual(decodingError(#"{"size": 4294967296}"#), "invalid value for int32 field size")
        XCTAssertEqual(decodingError(#"{"lock_timeout_seconds": "soon"}"#), "invalid value for int32 field lock_timeout_seconds")
    }

    private func object(_ bytes: [UInt8]) throws -> NSDictionary {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
    }

    func testLockResponseHasGoLDLMsFieldsAndTheFencingTokenAsAString() throws {
        let granted = RESTMessages.lockResponse(locked: true, name: "a", key: "k-1", fencingToken: 1_796_061_866_104_016)
        XCTAssertEqual(String(decoding: granted, as: UTF8.self), #"{"locked":true,"name":"a","key":"k-1","fencingToken":"1796061866104016"}"#)

        let refused = RESTMessages.lockResponse(
            locked: false, name: "a", error: LDLMError(code: .lockSizeMismatch, message: "size mismatch")
        )
        XCTAssertEqual(
            String(decoding: refused, as: UTF8.self),
            #"{"locked":false,"name":"a","key":"","error":{"code":"LockSizeMismatch","message":"size mismatch"},"fencingToken":"0"}"#
        )
    }

    func testUnlockResponseAndStatusErrorShapes() throws {
        XCTAssertEqual(String(decoding: RESTMessages.unlockResponse(unlocked: true, name: "a"), as: UTF8.self), #"{"unlocked":true,"name":"a"}"#)
        let failed = RESTMessages.unlockResponse(unlocked: false, name: "a", error: LDLMError(code: .lockDoesNotExist, message: "gone"))
        XCTAssertEqual(
            String(decoding: failed, as: UTF8.self),
            #"{"unlocked":false,"name":"a","error":{"code":"LockDoesNotExist","message":"gone"}}"#
        )
        XCTAssertEqual(String(decoding: RESTMessages.statusError(code: 3, message: "bad"), as: UTF8.self), #"{"code":3,"message":"bad","details":[]}"#)
    }

    func testEveryErrorCodeIsWrittenWithItsProtoName() {
        XCTAssertEqual(ErrorCode.allCases.map(RESTMessages.errorCodeName), [
            "Unknown", "LockDoesNotExist", "InvalidLockKey", "LockWaitTimeout", "NotLocked",
            "LockDoesNotExistOrInvalidKey", "LockSizeMismatch", "InvalidLockSize",
        ])
    }

    func testNamesAreEscapedSoTheAnswerStaysJSON() throws {
        let name = "quote\" backslash\\ newline\n bell\u{7} é"
        let decoded = try object(RESTMessages.unlockResponse(unlocked: true, name: name))
        XCTAssertEqual(decoded["name"] as? String, name)
    }
}

final class RESTSessionTableTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    func testASessionExpiresOnceIdleForTheTimeoutAndEachUseRestartsIt() {
        var table = RESTSessionTable(idleTimeoutNanoseconds: 10 * second, capacity: 10)
        table.insert(id: "a", session: SessionID(rawValue: 1), now: 0)
        table.insert(id: "b", session: SessionID(rawValue: 2), now: 0)
        XCTAssertEqual(table.earliestExpiry, 10 * second)

        XCTAssertEqual(table.use(id: "a", now: 9 * second), SessionID(rawValue: 1))
        XCTAssertEqual(table.removeExpired(now: 10 * second), [SessionID(rawValue: 2)])
        XCTAssertNil(table.use(id: "b", now: 10 * second), "expired")
        XCTAssertEqual(table.earliestExpiry, 19 * second, "a's use pushed its expiry back")
        XCTAssertEqual(table.removeExpired(now: 18 * second), [])
        XCTAssertNil(table.use(id: "a", now: 19 * second), "a use at the expiry is too late")
        XCTAssertEqual(table.removeExpired(now: 19 * second), [SessionID(rawValue: 1)])
        XCTAssertEqual(table.count, 0)
        XCTAssertNil(table.earliestExpiry)
    }

    func testCapacityBoundsTheSessionsAndARemovedOneFreesItsPlace() {
        var table = RESTSessionTable(idleTimeoutNanoseconds: second, capacity: 2)
        table.insert(id: "a", session: SessionID(rawValue: 1), now: 0)
        XCTAssertFalse(table.isFull)
        table.insert(id: "b", session: SessionID(rawValue: 2), now: 0)
        XCTAssertTrue(table.isFull)
        XCTAssertEqual(table.remove(id: "a"), SessionID(rawValue: 1))
        XCTAssertNil(table.remove(id: "a"))
        XCTAssertFalse(table.isFull)
        XCTAssertEqual(table.removeExpired(now: second), [SessionID(rawValue: 2)], "a removed session never expires")
    }

    func testExpiryStaysRightAcrossTheQueueRebuildsThatManyUsesCause() {
        var table = RESTSessionTable(idleTimeoutNanoseconds: 10 * second, capacity: 10)
        table.insert(id: "busy", session: SessionID(rawValue: 1), now: 0)
        table.insert(id: "idle", session: SessionID(rawValue: 2), now: 0)
        for tick in 1...100_000 {
            XCTAssertNotNil(table.use(id: "busy", now: UInt64(tick)))
        }
        XCTAssertEqual(table.removeExpired(now: 10 * second), [SessionID(rawValue: 2)])
        XCTAssertEqual(table.earliestExpiry, 10 * second + 100_000)
        XCTAssertEqual(table.removeExpired(now: 10 * second + 100_000), [SessionID(rawValue: 1)])
    }
}
