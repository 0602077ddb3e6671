import LDLMCore
import LDLMGRPC
import LDLMProtocol
import NIOCore
import XCTest

@testable import LDLMServer

/// The admin service end to end on the embedded pipeline: listings, forced
/// unlocks and ended sessions, asked over the Unix socket.
final class AdminServiceTests: XCTestCase {
    private let notFound = GRPCStatus.Code.notFound.rawValue

    func testListLocksShowsHoldersWithTheirSessionsLeasesAndWaiters() throws {
        let server = EmbeddedServer()
        let holder = try server.connect(port: 4001)
        let held = try holder.lockResponse("db", lockTimeoutSeconds: 30)
        _ = try holder.lock("free")
        let waiter = try server.connect(port: 4002)
        try waiter.call("Lock", LockRequest(name: "db"))
        let admin = try server.connect(overUnixSocket: true)
        server.advanceTime(by: .milliseconds(10_250))

        let locks = try XCTUnwrap(admin.adminCall("ListLocks", AdminListLocksRequest(), as: AdminListLocksResponse.self)).locks

        XCTAssertEqual(locks.map(\.name), ["db", "free"])
        XCTAssertEqual(locks[0].size, 1)
        XCTAssertEqual(locks[0].waiters, 1)
        XCTAssertEqual(locks[0].holders, [
            AdminHolder(
                keyPrefix: String(held.key.prefix(8)),
                sessionID: try XCTUnwrap(holder.sessionID(in: server)),
                remoteAddress: "127.0.0.1:4001",
                leaseRemainingMilliseconds: 19_750,
                fencingToken: held.fencingToken
            ),
        ])
        XCTAssertNil(locks[1].holders.first?.leaseRemainingMilliseconds, "no lease, no lease left")
        XCTAssertEqual(locks[1].waiters, 0)
    }

    func testListSessionsShowsEveryConnectionWithWhatItHoldsAndAwaits() throws {
        let server = EmbeddedServer()
        let holder = try server.connect(port: 4001)
        _ = try holder.lock("a")
        _ = try holder.lock("b")
        let waiter = try server.connect(port: 4002)
        try waiter.call("Lock", LockRequest(name: "a"))
        let admin = try server.connect(overUnixSocket: true)

        let sessions = try XCTUnwrap(admin.adminCall("ListSessions", AdminListSessionsRequest(), as: AdminListSessionsResponse.self)).sessions

        let now = EmbeddedServer.wallClockNow
        XCTAssertEqual(sessions, [
            AdminSession(id: try XCTUnwrap(holder.sessionID(in: server)), remoteAddress: "127.0.0.1:4001", locksHeld: 2, waitingCalls: 0, connectedSinceUnixMilliseconds: now),
            AdminSession(id: try XCTUnwrap(waiter.sessionID(in: server)), remoteAddress: "127.0.0.1:4002", locksHeld: 0, waitingCalls: 1, connectedSinceUnixMilliseconds: now),
            AdminSession(id: try XCTUnwrap(admin.sessionID(in: server)), remoteAddress: "unix:/run/ldlm/test.sock", locksHeld: 0, waitingCalls: 0, connectedSinceUnixMilliseconds: now),
        ])
    }

    func testForceUnlockGrantsTheWaiterAndArmsItsLease() throws {
        let server = EmbeddedServer()
        let holder = try server.connect()
        _ = try holder.lock("db")
        let waiter = try server.connect()
        let waiting = try waiter.call("Lock", LockRequest(name: "db", lockTimeoutSeconds: 5))
        let admin = try server.connect(overUnixSocket: true)

        let answer = admin.adminCall("ForceUnlock", AdminForceUnlockRequest(name: "db"), as: AdminForceUnlockResponse.self)

        XCTAssertEqual(try answer?.released, 1)
        try waiter.exchange()
        XCTAssertEqual(try waiter.response(of: waiting, as: LockResponse.self)?.locked, true, "the waiter got the lock")
        server.advanceTime(by: .seconds(5))
        XCTAssertEqual(server.manager.lockCount, 0, "the waiter's lease was scheduled and ran out")
    }

    func testForceUnlockOfOneKeyByItsListedPrefixLeavesTheOthers() throws {
        let server = EmbeddedServer()
        let first = try server.connect()
        let firstKey = try first.lock("pool", size: 2)
        let second = try server.connect()
        let secondKey = try second.lock("pool", size: 2)
        let admin = try server.connect(overUnixSocket: true)

        let request = AdminForceUnlockRequest(name: "pool", key: String(firstKey.prefix(8)).uppercased())
        XCTAssertEqual(try admin.adminCall("ForceUnlock", request, as: AdminForceUnlockResponse.self)?.released, 1)

        XCTAssertEqual(server.manager.lockInfo(name: "pool")?.holders.map(\.key.description), [secondKey])
        let again = try admin.call("ForceUnlock", request, service: AdminService.name)
        XCTAssertEqual(admin.status(of: again)?.code, notFound)
    }

    func testForceUnlockRefusesAKeyStartThatNamesSeveralHolders() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        // 17 keys, 16 hexadecimal digits: two of them start alike.
        let keys = try (0..<17).map { _ in try client.lock("wide", size: 17) }
        let shared = try XCTUnwrap(Dictionary(grouping: keys, by: \.first!).first { $0.value.count > 1 }?.key)
        let admin = try server.connect(overUnixSocket: true)

        let stream = try admin.call("ForceUnlock", AdminForceUnlockRequest(name: "wide", key: String(shared)), service: AdminService.name)

        XCTAssertEqual(admin.status(of: stream)?.code, GRPCStatus.Code.invalidArgument.rawValue)
        XCTAssertEqual(server.manager.lockInfo(name: "wide")?.holders.count, 17)
    }

    func testForceUnlockOfAnUnknownLockIsNotFound() throws {
        let server = EmbeddedServer()
        let admin = try server.connect(overUnixSocket: true)
        let stream = try admin.call("ForceUnlock", AdminForceUnlockRequest(name: "nope"), service: AdminService.name)
        XCTAssertEqual(admin.status(of: stream)?.code, notFound)
        XCTAssertEqual(admin.status(of: stream)?.message, "lock \"nope\" does not exist")
    }

    func testEndSessionReleasesItsLocksEvenWhenKeptOnDisconnectAndClosesItsConnection() throws {
        let server = EmbeddedServer { $0.clearOnDisconnect = false }
        let ended = try server.connect()
        _ = try ended.lock("x")
        _ = try ended.lock("y")
        let waiter = try server.connect()
        let waiting = try waiter.call("Lock", LockRequest(name: "x"))
        let admin = try server.connect(overUnixSocket: true)
        let id = try XCTUnwrap(ended.sessionID(in: server))

        let answer = admin.adminCall("EndSession", AdminEndSessionRequest(sessionID: id), as: AdminEndSessionResponse.self)

        XCTAssertEqual(try answer?.releasedLocks, 2)
        try waiter.exchange()
        XCTAssertEqual(try waiter.response(of: waiting, as: LockResponse.self)?.locked, true)
        XCTAssertNil(server.manager.lockInfo(name: "y"))
        server.loop.run()
        XCTAssertFalse(ended.channel.isActive, "its connection is closed")
        XCTAssertEqual(server.manager.sessionCount, 2)
        let unknown = try admin.call("EndSession", AdminEndSessionRequest(sessionID: id), service: AdminService.name)
        XCTAssertEqual(admin.status(of: unknown)?.code, notFound)
    }

    func testAnAdministratorCanEndItsOwnSession() throws {
        let server = EmbeddedServer()
        let admin = try server.connect(overUnixSocket: true)
        let id = try XCTUnwrap(admin.sessionID(in: server))
        try admin.call("EndSession", AdminEndSessionRequest(sessionID: id), service: AdminService.name)
        server.loop.run()
        XCTAssertFalse(admin.channel.isActive)
        XCTAssertEqual(server.manager.sessionCount, 0)
    }

    func testTheUnixSocketServesLockCallsWithoutThePassword() throws {
        let server = EmbeddedServer { $0.password = "s3cret" }
        let local = try server.connect(overUnixSocket: true)
        let admitted = try local.call("TryLock", TryLockRequest(name: "p"))
        XCTAssertEqual(try local.response(of: admitted, as: LockResponse.self)?.locked, true)
        let remote = try server.connect()
        let refused = try remote.call("TryLock", TryLockRequest(name: "q"))
        XCTAssertEqual(remote.status(of: refused)?.code, GRPCStatus.Code.unauthenticated.rawValue)
    }
}

extension EmbeddedClient {
    /// Takes a lock that must be free; returns its key.
    func lock(_ name: String, size: Int32? = nil, lockTimeoutSeconds: Int32? = nil) throws -> String {
        try lockResponse(name, size: size, lockTimeoutSeconds: lockTimeoutSeconds).key
    }

    func lockResponse(_ name: String, size: Int32? = nil, lockTimeoutSeconds: Int32? = nil) throws -> LockResponse {
        let stream = try call("Lock", LockRequest(name: name, lockTimeoutSeconds: lockTimeoutSeconds, size: size))
        let response = try XCTUnwrap(response(of: stream, as: LockResponse.self))
        XCTAssertTrue(response.locked, "\(name) was not free")
        return response
    }

    /// An admin call that must succeed; nil (after a failure) if it did not.
    func adminCall<Response: LDLMMessage>(
        _ method: String,
        _ request: some LDLMMessage,
        as _: Response.Type,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> Response? {
        do {
            let stream = try call(method, request, service: AdminService.name)
            XCTAssertEqual(status(of: stream)?.code, 0, "\(status(of: stream)?.message ?? "no status")", file: file, line: line)
            return try response(of: stream, as: Response.self)
        } catch {
            XCTFail("\(method): \(error)", file: file, line: line)
            return nil
        }
    }

    /// The session of this connection, as the server lists it.
    func sessionID(in server: EmbeddedServer) -> UInt64? {
        let handlers = try? channel.pipeline.syncOperations.handler(type: SessionHandler.self)
        return handlers.flatMap { $0.connection.session?.rawValue }
    }
}
