import LDLMClient
import XCTest

/// Servers that die, freeze or come back: each test starts its own.
final class ConnectionLossTests: XCTestCase {
    func testKillingTheServerFiresEveryHandlesLostSignal() async throws {
        let server = try ServerProcess()
        let client = try makeClient([server])
        let handles = [
            try await client.lock(uniqueName()),
            try await client.lock(uniqueName()),
            try await client.tryLock(uniqueName())!,
        ]
        let start = ContinuousClock.now
        server.stop()
        for handle in handles {
            let reason = try await withTimeout(1) { try await handle.waitUntilLost() }
            guard case .connectionLost = reason else { return XCTFail("lost reason: \(reason)") }
        }
        // Within the 500 ms keepalive timeout.
        XCTAssertLessThan(elapsed(since: start), 0.5)
        await client.close()
    }

    func testAFrozenServerIsNoticedByKeepalive() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let client = try makeClient([server])
        let handles = [try await client.lock(uniqueName()), try await client.lock(uniqueName())]
        let start = ContinuousClock.now
        server.freeze()
        for handle in handles {
            let reason = try await withTimeout(3) { try await handle.waitUntilLost() }
            guard case .connectionLost(let why) = reason else { return XCTFail("lost reason: \(reason)") }
            XCTAssertTrue(why.contains("keepalive"), why)
        }
        // A PING every 200 ms, each given 500 ms.
        XCTAssertLessThan(elapsed(since: start), 1.2)
        await client.close()
    }

    func testTheLeaseRunsOutHereWhenRenewsGoUnanswered() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let client = try makeClient([server]) { $0.keepalive = nil }
        let start = ContinuousClock.now
        let handle = try await client.lock(uniqueName(), lease: .seconds(2))
        server.freeze()
        let reason = try await withTimeout(4) { try await handle.waitUntilLost() }
        XCTAssertEqual(reason, .leaseExpired)
        // Counted from when the lock was sent, less 10% for clock drift.
        XCTAssertLessThan(elapsed(since: start), 1.8 + 0.25)
        XCTAssertGreaterThan(elapsed(since: start), 1.5)
        await client.close()
    }

    func testACallAfterTheConnectionDroppedFailsThenReconnects() async throws {
        var server = try ServerProcess()
        let port = server.port
        let client = try makeClient([server])
        let handle = try await client.lock(uniqueName())
        server.stop()
        _ = try await withTimeout(2) { try await handle.waitUntilLost() }

        await assertThrows(try await withTimeout(5) { try await client.tryLock(uniqueName()) }) {
            if case LDLMClientError.unavailable = $0 { return true }
            return false
        }
        // The server released it with the session: nothing to send, nothing to wait for.
        try await withTimeout(1) { try await client.unlock(handle) }

        server = try ServerProcess(port: port)
        defer { server.stop() }
        let name = uniqueName()
        let again = try await withTimeout(5) { try await client.lock(name) }
        XCTAssertEqual(again.name, name)
        XCTAssertNil(again.lostReason)
        try await client.unlock(again)
        await client.close()
    }

    func testClosingTheClientEndsItsHoldsAndLaterCalls() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let client = try makeClient([server])
        let other = try makeClient([server])
        let name = uniqueName()
        let handle = try await client.lock(name)
        await client.close()
        XCTAssertEqual(handle.lostReason, .connectionLost("client closed"))
        await assertThrows(try await client.tryLock(uniqueName())) { $0 as? LDLMClientError == .clientClosed }
        // The server released the lock with the session.
        let taken = try await withTimeout(2) { try await other.lock(name) }
        try await other.unlock(taken)
        await other.close()
    }

    func testAWrongPasswordIsUnauthenticated() async throws {
        let server = try ServerProcess(arguments: ["--password", "sesame"])
        defer { server.stop() }
        let wrong = try makeClient([server], password: "open")
        await assertThrows(try await wrong.tryLock(uniqueName())) {
            if case LDLMClientError.unauthenticated = $0 { return true }
            return false
        }
        let none = try makeClient([server])
        await assertThrows(try await none.lock(uniqueName())) {
            if case LDLMClientError.unauthenticated = $0 { return true }
            return false
        }
        let right = try makeClient([server], password: "sesame")
        let handle = try await right.lock(uniqueName())
        try await right.unlock(handle)
        for client in [wrong, none, right] { await client.close() }
    }
}
