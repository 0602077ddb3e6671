import Foundation
import LDLMClient
import XCTest

/// ``LDLMAdmin`` against a real server: over its Unix socket, and over TCP
/// with the admin password.
final class AdminTests: XCTestCase {
    /// Short enough for `sockaddr_un`, unlike a path under the test's temporary directory.
    private func socketPath() -> String {
        "/tmp/ldlm-admin-\(UUID().uuidString.prefix(8)).sock"
    }

    private func startWithSocket(_ arguments: [String] = []) throws -> (ServerProcess, LDLMAdmin, String) {
        let path = socketPath()
        let server = try ServerProcess(arguments: ["--ipc_socket_file", path] + arguments)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return (server, try LDLMAdmin(configuration: .init(endpoint: .unixSocket(path))), path)
    }

    func testListsLocksAndSessionsOverTheUnixSocket() async throws {
        let (server, admin, path) = try startWithSocket()
        let client = try makeClient([server])
        let name = uniqueName()
        let handle = try await client.lock(name, lease: .seconds(10))

        let locks = try await admin.listLocks()
        XCTAssertEqual(locks.map(\.name), [name])
        let holder = try XCTUnwrap(locks.first?.holders.first)
        XCTAssertEqual(locks.first?.size, 1)
        XCTAssertEqual(locks.first?.waiters, 0)
        XCTAssertEqual(holder.keyPrefix, String(handle.key.prefix(8)))
        XCTAssertEqual(holder.fencingToken, handle.fencingToken)
        XCTAssertTrue(holder.remoteAddress.hasPrefix("127.0.0.1:"), holder.remoteAddress)
        let lease = try XCTUnwrap(holder.leaseRemaining)
        XCTAssertTrue(lease > .seconds(5) && lease <= .seconds(10), "\(lease)")

        let sessions = try await admin.listSessions()
        let session = try XCTUnwrap(sessions.first { $0.id == holder.sessionID })
        XCTAssertEqual(session.locksHeld, 1)
        XCTAssertEqual(session.remoteAddress, holder.remoteAddress)
        XCTAssertTrue(sessions.contains { $0.remoteAddress == "unix:\(path)" }, "the admin's own session: \(sessions)")
        let nowMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        XCTAssertTrue(abs(session.connectedSinceUnixMilliseconds - nowMilliseconds) < 60_000)
    }

    func testForceUnlockEndsTheHoldAtItsNextRenew() async throws {
        let (server, admin, _) = try startWithSocket()
        let client = try makeClient([server])
        let name = uniqueName()
        let handle = try await client.lock(name, lease: .seconds(2))

        let released = try await admin.forceUnlock(name: name, key: String(handle.key.prefix(8)))
        XCTAssertEqual(released, 1)
        let remaining = try await admin.listLocks()
        XCTAssertEqual(remaining, [])
        let reason = try await withTimeout(3) { try await handle.waitUntilLost() }
        guard case .renewFailed = reason else { return XCTFail("\(reason)") }

        await assertThrows(try await admin.forceUnlock(name: name)) {
            if case LDLMClientError.notFound = $0 { return true }
            return false
        }
    }

    func testEndSessionReleasesTheSessionsLocks() async throws {
        let (server, admin, _) = try startWithSocket(["--no_clear_on_disconnect"])
        let client = try makeClient([server])
        let handle = try await client.lock(uniqueName())
        let locks = try await admin.listLocks()
        let sessionID = try XCTUnwrap(locks.first?.holders.first?.sessionID)

        let released = try await admin.endSession(id: sessionID)
        XCTAssertEqual(released, 1)
        let reason = try await withTimeout(3) { try await handle.waitUntilLost() }
        guard case .connectionLost = reason else { return XCTFail("\(reason)") }
        let remaining = try await admin.listLocks()
        XCTAssertEqual(remaining, [])
        await assertThrows(try await admin.endSession(id: sessionID)) {
            if case LDLMClientError.notFound = $0 { return true }
            return false
        }
    }

    func testTCPNeedsTheAdminPassword() async throws {
        let server = try ServerProcess(arguments: ["--password", "lock-pw", "--admin_password", "admin-pw"])
        func admin(_ password: String?) throws -> LDLMAdmin {
            var configuration = LDLMAdmin.Configuration(endpoint: .address(server.address))
            configuration.adminPassword = password
            return try LDLMAdmin(configuration: configuration)
        }
        let locks = try await admin("admin-pw").listLocks()
        XCTAssertEqual(locks, [])
        for password in [nil, "lock-pw", "wrong"] {
            await assertThrows(try await admin(password).listSessions()) {
                if case LDLMClientError.unauthenticated = $0 { return true }
                return false
            }
        }
    }

    func testTCPWithoutAdminAccessConfiguredIsRefused() async throws {
        let server = try ServerProcess()
        let admin = try LDLMAdmin(configuration: .init(endpoint: .address(server.address)))
        await assertThrows(try await admin.listLocks()) {
            if case LDLMClientError.permissionDenied = $0 { return true }
            return false
        }
    }

    func testTLSOverTheUnixSocketIsAConfigurationError() {
        var configuration = LDLMAdmin.Configuration(endpoint: .unixSocket(socketPath()))
        configuration.tls = LDLMClient.TLS()
        XCTAssertThrowsError(try LDLMAdmin(configuration: configuration)) {
            guard case LDLMClientError.invalidConfiguration = $0 else { return XCTFail("\($0)") }
        }
    }

    func testUnlockByNameAndKeyFromAnotherClient() async throws {
        let server = try ServerProcess()
        let holder = try makeClient([server])
        let other = try makeClient([server])
        let name = uniqueName()
        let handle = try await holder.lock(name, lease: .seconds(2))

        await assertThrows(try await other.unlock(name: name, key: "not-the-key")) {
            if case LDLMClientError.invalidLockKey = $0 { return true }
            return false
        }
        try await other.unlock(name: name, key: handle.key)
        let taken = try await other.tryLock(name)
        XCTAssertNotNil(taken)
        let reason = try await withTimeout(3) { try await handle.waitUntilLost() }
        guard case .renewFailed = reason else { return XCTFail("\(reason)") }
    }
}
