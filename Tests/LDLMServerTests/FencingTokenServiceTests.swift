import Foundation
import LDLMProtocol
import XCTest

/// Fencing tokens in the answers of the `ldlm.LDLM` service, through the whole
/// connection pipeline.
final class FencingTokenServiceTests: XCTestCase {
    func testTokensStartAboveTheWallClockInMicrosecondsAndRiseWithEveryGrant() throws {
        let before = wallClockMicroseconds()
        let server = EmbeddedServer()
        let after = wallClockMicroseconds()
        let holder = try server.connect()
        let waiter = try server.connect()

        let first = try answer(holder, "Lock", LockRequest(name: "a"))
        XCTAssertGreaterThan(first.fencingToken, before)
        XCTAssertLessThanOrEqual(first.fencingToken, after + 1, "microseconds, read when the server started")

        let queued = try waiter.call("Lock", LockRequest(name: "a"))
        try holder.call("Unlock", UnlockRequest(name: "a", key: first.key))
        try waiter.exchange()
        let granted = try XCTUnwrap(try waiter.response(of: queued, as: LockResponse.self))
        XCTAssertTrue(granted.locked)
        XCTAssertGreaterThan(granted.fencingToken, first.fencingToken)

        try waiter.call("Unlock", UnlockRequest(name: "a", key: granted.key))
        let tried = try answer(holder, "TryLock", TryLockRequest(name: "a"))
        XCTAssertTrue(tried.locked)
        XCTAssertGreaterThan(tried.fencingToken, granted.fencingToken)
    }

    func testEachHolderOfASizedLockGetsALargerToken() throws {
        let server = EmbeddedServer()
        let tokens = try (0..<3).map { _ in
            try answer(try server.connect(), "Lock", LockRequest(name: "pool", size: 3)).fencingToken
        }
        XCTAssertEqual(tokens, tokens.sorted())
        XCTAssertEqual(Set(tokens).count, 3)
    }

    func testRenewAndRefreshLockAnswerWithTheTokenOfTheAcquisition() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let held = try answer(client, "Lock", LockRequest(name: "r", lockTimeoutSeconds: 5))
        try answer(client, "TryLock", TryLockRequest(name: "other"))

        for method in ["Renew", "RefreshLock"] {
            let renewed = try answer(client, method, RenewRequest(name: "r", key: held.key, lockTimeoutSeconds: 10))
            XCTAssertTrue(renewed.locked, method)
            XCTAssertEqual(renewed.fencingToken, held.fencingToken, method)
        }
    }

    func testAnswersWithoutAHoldCarryNoToken() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let held = try answer(client, "Lock", LockRequest(name: "x"))

        let busy = try answer(client, "TryLock", TryLockRequest(name: "x"))
        let mismatch = try answer(client, "Lock", LockRequest(name: "x", size: 2))
        let badRenew = try answer(client, "Renew", RenewRequest(name: "x", key: held.key + "0", lockTimeoutSeconds: 5))
        for response in [busy, mismatch, badRenew] {
            XCTAssertFalse(response.locked)
            XCTAssertEqual(response.fencingToken, 0)
        }
    }

    @discardableResult
    private func answer(
        _ client: EmbeddedClient,
        _ method: String,
        _ request: some LDLMMessage,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> LockResponse {
        let stream = try client.call(method, request)
        return try XCTUnwrap(try client.response(of: stream, as: LockResponse.self), "\(method) got no answer", file: file, line: line)
    }

    private func wallClockMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}
