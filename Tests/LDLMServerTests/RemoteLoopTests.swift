import LDLMCore
import LDLMGRPC
import LDLMProtocol
import NIOCore
import NIOEmbedded
import XCTest

@testable import LDLMServer

/// Connections on another event loop than the lock manager's: every call,
/// session change, cancel and undo hops through the loop's
/// ``OwnerLoopBridge``. Two embedded loops whose tasks run only when a test
/// runs them, so each interleaving below is exact.
final class RemoteLoopTests: XCTestCase {
    private let deadlineExceeded = GRPCStatus.Code.deadlineExceeded.rawValue
    private let unavailable = GRPCStatus.Code.unavailable.rawValue

    func testCallsAndTheSessionGoThroughTheOwner() throws {
        let server = EmbeddedServer(remoteLoop: true)
        let client = try server.connect()
        XCTAssertEqual(server.manager.sessionCount, 1)
        XCTAssertNotNil(client.sessionID(in: server), "the owner told the connection its session")

        let key = try client.lock("a")
        XCTAssertEqual(server.manager.lockCount, 1)
        let unlocked = try client.call("Unlock", UnlockRequest(name: "a", key: key))
        XCTAssertEqual(try client.response(of: unlocked, as: UnlockResponse.self)?.unlocked, true)
        XCTAssertEqual(server.manager.lockCount, 0)

        _ = try client.lock("b")
        try client.channel.close().wait()
        server.settle()
        XCTAssertEqual(server.manager.lockCount, 0, "a closed connection's session releases its locks")
        XCTAssertEqual(server.manager.sessionCount, 0)
    }

    func testASessionClosesOnlyAfterTheCallsItsConnectionSentBefore() throws {
        let server = EmbeddedServer(remoteLoop: true)
        let client = try server.connect()
        try client.send("Lock", LockRequest(name: "late"))
        try client.channel.close().wait()
        server.settle()
        // The grant reached a closed connection: undone on the owner, and the
        // session's close released it in any case.
        XCTAssertEqual(server.manager.lockCount, 0)
        XCTAssertEqual(server.manager.sessionCount, 0)
    }

    func testADeadlineWithdrawsAWaiterThroughTheOwner() throws {
        let server = EmbeddedServer(remoteLoop: true)
        let holder = try server.connect()
        _ = try holder.lock("busy")
        let waiter = try server.connect()
        let stream = try waiter.call("Lock", LockRequest(name: "busy"), metadata: [.init("grpc-timeout", "2S")])
        XCTAssertEqual(server.manager.lockInfo(name: "busy")?.waiterCount, 1)

        server.advanceTime(by: .milliseconds(1_999))
        try waiter.exchange()
        XCTAssertNil(waiter.status(of: stream), "not before its deadline")
        server.advanceTime(by: .milliseconds(1))
        try waiter.exchange()
        XCTAssertEqual(waiter.status(of: stream)?.code, deadlineExceeded)
        XCTAssertEqual(server.manager.lockInfo(name: "busy")?.waiterCount, 0)

        // The connection keeps serving: no deadline fires again for the stream.
        server.advanceTime(by: .seconds(5))
        try holder.channel.close().wait()
        server.settle()
        XCTAssertEqual(server.manager.lockCount, 0, "the timed-out waiter was withdrawn, not granted")
    }

    func testAGrantOnItsWayWhenTheDeadlinePassesIsDeliveredAndKept() throws {
        let server = EmbeddedServer(remoteLoop: true)
        let connectionLoop = try XCTUnwrap(server.connectionLoop)
        let holder = try server.connect()
        let key = try holder.lock("raced")
        let waiter = try server.connect()
        let stream = try waiter.call("Lock", LockRequest(name: "raced"), metadata: [.init("grpc-timeout", "2S")])

        try holder.send("Unlock", UnlockRequest(name: "raced", key: key))
        connectionLoop.run()
        // The unlock is on its way to the owner when the waiter's deadline passes.
        connectionLoop.advanceTime(by: .seconds(2))
        server.loop.advanceTime(by: .seconds(2))
        server.settle()
        try waiter.exchange()

        XCTAssertEqual(waiter.status(of: stream)?.code, 0, "the grant the owner made first is the answer")
        XCTAssertEqual(try waiter.response(of: stream, as: LockResponse.self)?.locked, true)
        XCTAssertEqual(server.manager.lockInfo(name: "raced")?.holders.count, 1)
    }

    func testAGrantToAStreamResetMeanwhileIsUndoneOnTheOwner() throws {
        let server = EmbeddedServer(remoteLoop: true)
        let connectionLoop = try XCTUnwrap(server.connectionLoop)
        let holder = try server.connect()
        let key = try holder.lock("x")
        let waiter = try server.connect()
        let stream = try waiter.call("Lock", LockRequest(name: "x"))

        try holder.send("Unlock", UnlockRequest(name: "x", key: key))
        connectionLoop.run()
        server.loop.run()
        XCTAssertEqual(server.manager.lockInfo(name: "x")?.holders.count, 1, "granted to the waiter, the answer on its way")
        try waiter.sendReset(stream)
        server.settle()

        XCTAssertEqual(server.manager.lockCount, 0, "the grant nobody received was undone")
        XCTAssertEqual(server.manager.sessionCount, 2)
    }

    func testAResetWaiterIsWithdrawnFromTheQueue() throws {
        let server = EmbeddedServer(remoteLoop: true)
        let holder = try server.connect()
        let key = try holder.lock("q")
        let waiter = try server.connect()
        let stream = try waiter.call("Lock", LockRequest(name: "q"))
        try waiter.resetStream(stream)
        XCTAssertEqual(server.manager.lockInfo(name: "q")?.waiterCount, 0)
        try holder.call("Unlock", UnlockRequest(name: "q", key: key))
        XCTAssertEqual(server.manager.lockCount, 0, "the withdrawn waiter got nothing")
    }

    func testADrainAnswersWaitersUnavailableBeforeTheGoAway() throws {
        let server = EmbeddedServer(remoteLoop: true)
        let holder = try server.connect()
        _ = try holder.lock("d")
        let waiter = try server.connect()
        let stream = try waiter.call("Lock", LockRequest(name: "d"))
        server.manager.beginDrain()
        server.pipeline.loops.handOverNow()
        waiter.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try waiter.exchange()
        XCTAssertEqual(waiter.status(of: stream)?.code, unavailable)
        XCTAssertTrue(waiter.receivedGoAway)
    }

    /// A `Watch` the owner began while its connection closed: the
    /// connection's handlers were gone when the stream's start came back, so
    /// nothing there could withdraw it; the session's close must.
    func testAWatchWhoseConnectionClosedBeforeItsStreamBeganEndsOnTheOwner() throws {
        let server = EmbeddedServer(remoteLoop: true)
        let connectionLoop = try XCTUnwrap(server.connectionLoop)
        let health = try XCTUnwrap(server.services.lazy.compactMap { $0 as? HealthService }.first)
        let client = try server.connect()
        try client.send("Watch", HealthCheckRequest(), service: "grpc.health.v1.Health")
        // The call is on its way to the owner when the connection closes.
        connectionLoop.run()
        try client.channel.close().wait()
        connectionLoop.run()
        server.settle()
        XCTAssertEqual(server.manager.sessionCount, 0)
        XCTAssertEqual(health.watcherCount, 0, "a closed connection's Watch stays registered on the owner")
    }

    /// The same with a `Watch` whose start reached the connection: its
    /// close withdraws it through the bridge (this already held).
    func testAWatchEndsOnTheOwnerWhenItsConnectionCloses() throws {
        let server = EmbeddedServer(remoteLoop: true)
        let health = try XCTUnwrap(server.services.lazy.compactMap { $0 as? HealthService }.first)
        let client = try server.connect()
        try client.call("Watch", HealthCheckRequest(), service: "grpc.health.v1.Health")
        XCTAssertEqual(health.watcherCount, 1)
        try client.channel.close().wait()
        server.settle()
        XCTAssertEqual(health.watcherCount, 0)
    }

    func testAdminEndSessionClosesTheConnection() throws {
        let server = EmbeddedServer(remoteLoop: true)
        let ended = try server.connect()
        _ = try ended.lock("x")
        let admin = try server.connect(overUnixSocket: true)
        let id = try XCTUnwrap(ended.sessionID(in: server))
        let answer = admin.adminCall("EndSession", AdminEndSessionRequest(sessionID: id), as: AdminEndSessionResponse.self)
        XCTAssertEqual(answer?.releasedLocks, 1)
        server.settle()
        XCTAssertFalse(ended.channel.isActive)
        XCTAssertEqual(server.manager.sessionCount, 1)
    }

    func testTheIdleCheckAsksTheOwnerWhetherTheSessionHoldsALock() throws {
        let server = EmbeddedServer(remoteLoop: true) { $0.idleTimeout = .seconds(8) }
        let idle = try server.connect()
        let holding = try server.connect()
        _ = try holding.lock("kept")
        for _ in 0..<6 {
            server.advanceTime(by: .seconds(2))
            try idle.exchange()
            try holding.exchange()
        }
        XCTAssertTrue(idle.receivedGoAway, "idle for the idle timeout")
        XCTAssertFalse(holding.receivedGoAway, "its session holds a lock")
    }

    /// The owner has not answered the idle check's question yet (it is busy
    /// or stalled): the connection must not take "no answer" for "not busy"
    /// and close, as idle, a connection whose session holds a lock.
    func testALockHolderIsNotClosedAsIdleWhileTheOwnerHasNotAnsweredWhetherItIsBusy() throws {
        let server = EmbeddedServer(remoteLoop: true) { $0.idleTimeout = .seconds(8) }
        let connectionLoop = try XCTUnwrap(server.connectionLoop)
        let holding = try server.connect()
        _ = try holding.lock("kept")
        // Only the connection's loop runs: the owner answers nothing meanwhile.
        for _ in 0..<6 {
            connectionLoop.advanceTime(by: .seconds(2))
        }
        server.settle()
        try holding.exchange()
        XCTAssertFalse(holding.receivedGoAway, "closed as idle while its session holds a lock")
        XCTAssertEqual(server.manager.lockCount, 1, "the lock its client holds was released")
    }

    func testCallsAreCountedInTheMetrics() throws {
        let server = EmbeddedServer(remoteLoop: true) { $0.metricsListenAddress = "127.0.0.1:0" }
        let client = try server.connect()
        _ = try client.lock("m")
        let waiter = try server.connect()
        let stream = try waiter.call("Lock", LockRequest(name: "m"), metadata: [.init("grpc-timeout", "1S")])
        server.advanceTime(by: .seconds(1))
        try waiter.exchange()
        XCTAssertEqual(waiter.status(of: stream)?.code, deadlineExceeded)
        let text = String(decoding: try XCTUnwrap(server.metrics).exposition(), as: UTF8.self)
        XCTAssertEqual(lockCalls(in: text, outcome: "OK"), "1", text)
        XCTAssertEqual(lockCalls(in: text, outcome: "DEADLINE_EXCEEDED"), "1", text)
    }

    /// The `ldlm_rpcs_total` value of `Lock` calls with `outcome`, as exposed.
    private func lockCalls(in exposition: String, outcome: String) -> String? {
        let line = exposition.split(separator: "\n").first { line in
            line.hasPrefix("ldlm_rpcs_total{") && line.contains(#"method="Lock""#) && line.contains(#"outcome="\#(outcome)""#)
        }
        return line.flatMap { $0.split(separator: " ").last.map(String.init) }
    }
}
