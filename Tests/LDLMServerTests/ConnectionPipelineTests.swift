import LDLMCore
import LDLMGRPC
import LDLMProtocol
import NIOCore
import NIOEmbedded
import XCTest

@testable import LDLMServer

/// The whole connection pipeline on an embedded loop: calls, deadlines,
/// keepalive, idleness and drain, with virtual time instead of sleeps.
final class ConnectionPipelineTests: XCTestCase {
    private let deadlineExceeded = GRPCStatus.Code.deadlineExceeded.rawValue
    private let unavailable = GRPCStatus.Code.unavailable.rawValue

    func testLockIsGrantedAndReleasedWhenTheConnectionCloses() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let stream = try client.call("Lock", LockRequest(name: "a"))
        let response = try XCTUnwrap(client.response(of: stream, as: LockResponse.self))
        XCTAssertTrue(response.locked)
        XCTAssertEqual(server.manager.lockCount, 1)

        try client.channel.close().wait()
        XCTAssertEqual(server.manager.lockCount, 0, "a closed connection's session releases its locks")
        XCTAssertEqual(server.manager.sessionCount, 0)
    }

    func testWaitingLockFailsWithDeadlineExceededWhenItsGRPCTimeoutPasses() throws {
        let server = EmbeddedServer()
        let holder = try server.connect()
        try holder.call("Lock", LockRequest(name: "busy"))
        let waiter = try server.connect()
        let stream = try waiter.call("Lock", LockRequest(name: "busy"), metadata: [.init("grpc-timeout", "2S")])
        XCTAssertNil(waiter.status(of: stream), "still waiting")

        server.advanceTime(by: .milliseconds(1_999))
        try waiter.exchange()
        XCTAssertNil(waiter.status(of: stream), "not before its deadline")
        server.advanceTime(by: .milliseconds(1))
        try waiter.exchange()
        XCTAssertEqual(waiter.status(of: stream)?.code, deadlineExceeded)

        try holder.channel.close().wait()
        XCTAssertEqual(server.manager.lockCount, 0, "the timed-out waiter was withdrawn, not granted")
    }

    func testGRPCDeadlineShorterThanTheWaitTimeoutWins() throws {
        let server = EmbeddedServer()
        let holder = try server.connect()
        try holder.call("Lock", LockRequest(name: "busy"))
        let waiter = try server.connect()
        let stream = try waiter.call("Lock", LockRequest(name: "busy", waitTimeoutSeconds: 30), metadata: [.init("grpc-timeout", "1000m")])
        server.advanceTime(by: .seconds(1))
        try waiter.exchange()
        XCTAssertEqual(waiter.status(of: stream)?.code, deadlineExceeded)
    }

    func testWaitTimeoutShorterThanTheGRPCDeadlineAnswersLockWaitTimeout() throws {
        let server = EmbeddedServer()
        let holder = try server.connect()
        try holder.call("Lock", LockRequest(name: "busy"))
        let waiter = try server.connect()
        let stream = try waiter.call("Lock", LockRequest(name: "busy", waitTimeoutSeconds: 1), metadata: [.init("grpc-timeout", "30S")])
        server.advanceTime(by: .seconds(1))
        try waiter.exchange()
        XCTAssertEqual(waiter.status(of: stream)?.code, 0)
        let response = try XCTUnwrap(waiter.response(of: stream, as: LockResponse.self))
        XCTAssertFalse(response.locked)
        XCTAssertEqual(response.error?.code, .lockWaitTimeout)
    }

    func testLeaseExpiresOnTheManagersTimerWithoutAnyTraffic() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        try client.call("Lock", LockRequest(name: "leased", lockTimeoutSeconds: 3))
        XCTAssertEqual(server.manager.lockCount, 1)
        server.advanceTime(by: .seconds(3))
        XCTAssertEqual(server.manager.lockCount, 0, "released by the expiry timer, with no read or flush")
    }

    func testLeaseOfAWaiterGrantedByAnUnlockExpiresOnTime() throws {
        let server = EmbeddedServer()
        let holder = try server.connect()
        let held = try XCTUnwrap(holder.response(of: try holder.call("Lock", LockRequest(name: "handed")), as: LockResponse.self))
        let waiter = try server.connect()
        let waiting = try waiter.call("Lock", LockRequest(name: "handed", lockTimeoutSeconds: 2))
        try holder.call("Unlock", UnlockRequest(name: "handed", key: held.key))
        try waiter.exchange()
        XCTAssertEqual(try waiter.response(of: waiting, as: LockResponse.self)?.locked, true)

        server.advanceTime(by: .seconds(2))
        XCTAssertEqual(server.manager.lockCount, 0, "the lease the hand-off started runs out with no further call")
    }

    func testGrantToAWaiterWhoseStreamWasResetIsNeverKept() throws {
        let server = EmbeddedServer()
        let holder = try server.connect()
        let held = try XCTUnwrap(holder.response(of: try holder.call("Lock", LockRequest(name: "x")), as: LockResponse.self))
        let waiter = try server.connect()
        let stream = try waiter.call("Lock", LockRequest(name: "x"))
        XCTAssertEqual(server.manager.lockInfo(name: "x")?.waiterCount, 1)
        try waiter.resetStream(stream)
        XCTAssertEqual(server.manager.lockInfo(name: "x")?.waiterCount, 0, "withdrawn from the queue by the reset")

        try holder.call("Unlock", UnlockRequest(name: "x", key: held.key))
        XCTAssertEqual(server.manager.lockCount, 0, "the withdrawn waiter got nothing")
    }

    func testKeepalivePingUnansweredClosesTheConnectionAndReleasesItsLocks() throws {
        let server = EmbeddedServer { $0.keepaliveInterval = .seconds(10); $0.keepaliveTimeout = .seconds(2) }
        let client = try server.connect()
        try client.call("Lock", LockRequest(name: "k"))

        server.advanceTime(by: .seconds(10))
        XCTAssertTrue(try client.takeUnansweredOutputContainsPing())
        server.advanceTime(by: .milliseconds(1_999))
        XCTAssertTrue(client.channel.isActive)
        server.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(client.channel.isActive, "no PING ACK within the keepalive timeout")
        XCTAssertEqual(server.manager.lockCount, 0)
    }

    func testKeepalivePingAnsweredKeepsAQuietConnectionOpen() throws {
        let server = EmbeddedServer { $0.keepaliveInterval = .seconds(10); $0.keepaliveTimeout = .seconds(2) }
        let client = try server.connect()
        try client.call("Lock", LockRequest(name: "kept"))
        for _ in 0..<5 {
            // Each PING is answered at once; the timeout that follows it passes.
            server.advanceTime(by: .seconds(10))
            try client.exchange()
        }
        server.advanceTime(by: .seconds(5))
        XCTAssertTrue(client.channel.isActive)
        XCTAssertEqual(server.manager.lockCount, 1, "a healthy client keeps its lock")
    }

    func testIdleConnectionIsClosedWithGoAwayButOneHoldingALockIsNot() throws {
        let server = EmbeddedServer { $0.idleTimeout = .seconds(8) }
        let idle = try server.connect()
        let holder = try server.connect()
        try holder.call("TryLock", TryLockRequest(name: "held"))

        server.advanceTime(by: .seconds(7))
        try idle.exchange()
        XCTAssertTrue(idle.channel.isActive, "not idle long enough yet")
        server.advanceTime(by: .seconds(4))
        try idle.exchange()
        XCTAssertTrue(idle.receivedGoAway)
        XCTAssertFalse(idle.channel.isActive)
        XCTAssertTrue(holder.channel.isActive, "a quiet connection that holds a lock is never idle")
    }

    func testCallsKeepAConnectionFromBeingIdle() throws {
        let server = EmbeddedServer { $0.idleTimeout = .seconds(8) }
        let client = try server.connect()
        for round in 0..<6 {
            server.advanceTime(by: .seconds(3))
            try client.call("TryLock", TryLockRequest(name: "free-\(round)", lockTimeoutSeconds: 1))
            server.advanceTime(by: .seconds(1))
        }
        XCTAssertTrue(client.channel.isActive)
    }

    func testDrainAnswersWaitersUnavailableAtOnceThenEachConnectionGoesAwayAndCloses() throws {
        let server = EmbeddedServer()
        let holder = try server.connect()
        try holder.call("Lock", LockRequest(name: "d"))
        let waiter = try server.connect()
        let waiting = try waiter.call("Lock", LockRequest(name: "d"))

        server.manager.beginDrain()
        try waiter.exchange()
        XCTAssertEqual(waiter.status(of: waiting)?.code, unavailable, "answered at once, not when a timeout ends")
        XCTAssertEqual(waiter.status(of: waiting)?.message, "server is shutting down")

        for client in [holder, waiter] {
            client.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            try client.exchange()
            XCTAssertTrue(client.receivedGoAway)
            XCTAssertFalse(client.channel.isActive, "nothing left to answer: closed")
        }
        XCTAssertEqual(server.manager.lockCount, 0)
    }

    func testWhileDrainingALockIsGrantedAtOnceOrRefusedButNeverQueued() throws {
        let server = EmbeddedServer()
        let holder = try server.connect()
        try holder.call("Lock", LockRequest(name: "taken"))
        server.manager.beginDrain()
        let late = try server.connect()
        let refused = try late.call("Lock", LockRequest(name: "taken"))
        XCTAssertEqual(late.status(of: refused)?.code, unavailable)
        let granted = try late.call("Lock", LockRequest(name: "free"))
        XCTAssertEqual(try late.response(of: granted, as: LockResponse.self)?.locked, true)
    }

    func testWrongPasswordIsRefusedAndChangesNothing() throws {
        let server = EmbeddedServer { $0.password = "s3cret" }
        let client = try server.connect()
        let refused = try client.call("TryLock", TryLockRequest(name: "p"), metadata: [.init("authorization", "guess")])
        XCTAssertEqual(client.status(of: refused)?.code, GRPCStatus.Code.unauthenticated.rawValue)
        XCTAssertEqual(server.manager.lockCount, 0)
        let admitted = try client.call("TryLock", TryLockRequest(name: "p"), metadata: [.init("authorization", "s3cret")])
        XCTAssertEqual(try client.response(of: admitted, as: LockResponse.self)?.locked, true)
    }

    func testReadsStopWhileTheClientDoesNotReadItsAnswers() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let reads = ReadCounter()
        try client.channel.pipeline.syncOperations.addHandler(reads, position: .first)

        client.channel.isWritable = false
        client.channel.pipeline.fireChannelWritabilityChanged()
        client.channel.read()
        XCTAssertEqual(reads.count, 0, "no more reads while answers pile up")

        client.channel.isWritable = true
        client.channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(reads.count, 1, "the held-back read goes out once the socket drains")
    }
}

/// Counts the reads that reach the socket end of the pipeline.
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    private(set) var count = 0

    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}
