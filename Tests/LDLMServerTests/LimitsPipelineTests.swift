import LDLMGRPC
import LDLMHTTP2
import LDLMProtocol
import LDLMTestSupport
import NIOCore
import NIOEmbedded
import XCTest

@testable import LDLMServer

/// Server limits and stall timeouts through the real connection pipeline,
/// with virtual time.
final class LimitsPipelineTests: XCTestCase {
    private let resourceExhausted = GRPCStatus.Code.resourceExhausted.rawValue
    private let prefaceMagic = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let emptySettings: [UInt8] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0]

    /// A connection whose client sends only what the test writes.
    private func rawConnection(to server: EmbeddedServer) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: server.loop)
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 4100)
        channel.remoteAddress = peer
        try server.pipeline.configure(channel)
        try channel.connect(to: peer).wait()
        return channel
    }

    func testLockCreatingANameBeyondMaxLocksGetsResourceExhaustedAndOthersGoOn() throws {
        let server = EmbeddedServer { $0.maxLocks = 1 }
        let client = try server.connect()
        let held = try client.call("Lock", LockRequest(name: "a"))
        XCTAssertEqual(try client.response(of: held, as: LockResponse.self)?.locked, true)

        let refused = try client.call("TryLock", TryLockRequest(name: "b"))
        XCTAssertEqual(client.status(of: refused)?.code, resourceExhausted)
        XCTAssertEqual(client.status(of: refused)?.message, #"cannot create lock "b": the server already has 1 locks, its limit (max_locks)"#)
        let refusedLock = try client.call("Lock", LockRequest(name: "b"))
        XCTAssertEqual(client.status(of: refusedLock)?.code, resourceExhausted)

        let other = try server.connect(port: 4001)
        let tried = try other.call("TryLock", TryLockRequest(name: "a"))
        XCTAssertEqual(other.status(of: tried)?.code, 0, "an existing lock is still served")
        XCTAssertEqual(try other.response(of: tried, as: LockResponse.self)?.locked, false)
        XCTAssertEqual(server.manager.lockCount, 1)
    }

    func testLockQueueingBeyondMaxWaitersGetsResourceExhausted() throws {
        let server = EmbeddedServer { $0.maxWaiters = 1 }
        let holder = try server.connect()
        try holder.call("Lock", LockRequest(name: "busy"))
        let waiter = try server.connect(port: 4001)
        let queued = try waiter.call("Lock", LockRequest(name: "busy"))
        XCTAssertNil(waiter.status(of: queued), "the first waiter queues")
        let refused = try waiter.call("Lock", LockRequest(name: "busy"))
        XCTAssertEqual(waiter.status(of: refused)?.code, resourceExhausted)
        XCTAssertEqual(waiter.status(of: refused)?.message, #"cannot wait for lock "busy": 1 calls already wait for it, the server's limit (max_waiters)"#)

        try holder.channel.close().wait()
        try waiter.exchange()
        XCTAssertEqual(try waiter.response(of: queued, as: LockResponse.self)?.locked, true, "the queued call is still granted")
    }

    func testConnectionThatSendsNoPrefaceIsClosedAfterThePrefaceTimeout() throws {
        let server = EmbeddedServer { $0.prefaceTimeout = .seconds(3) }
        let silent = try rawConnection(to: server)
        let partial = try rawConnection(to: server)
        try partial.writeInbound(ByteBuffer(bytes: prefaceMagic + emptySettings.prefix(4)))
        let client = try server.connect(port: 4001)

        server.advanceTime(by: .milliseconds(2_999))
        XCTAssertTrue(silent.isActive)
        XCTAssertTrue(partial.isActive)
        server.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(silent.isActive, "no preface at all")
        XCTAssertFalse(partial.isActive, "the magic and half a SETTINGS frame")
        XCTAssertTrue(client.channel.isActive, "a client that sent its preface stays")

        server.advanceTime(by: .seconds(60))
        let stream = try client.call("TryLock", TryLockRequest(name: "x"))
        XCTAssertEqual(client.status(of: stream)?.code, 0)
    }

    func testHeaderBlockThatNeverEndsClosesTheConnectionAfterThePrefaceTimeout() throws {
        let server = EmbeddedServer { $0.prefaceTimeout = .seconds(3) }
        let channel = try rawConnection(to: server)
        try channel.writeInbound(ByteBuffer(bytes: prefaceMagic + emptySettings))
        server.advanceTime(by: .seconds(10))
        XCTAssertTrue(channel.isActive, "a preface that arrived stops the preface timer")

        // HEADERS on stream 1 without END_HEADERS: `:method: POST`, indexed.
        let headers: [UInt8] = [0, 0, 1, 0x1, 0x0, 0, 0, 0, 1, 0x83]
        try channel.writeInbound(ByteBuffer(bytes: headers))
        server.advanceTime(by: .seconds(2))
        // CONTINUATION without END_HEADERS: progress does not restart the timer.
        try channel.writeInbound(ByteBuffer(bytes: [0, 0, 1, 0x9, 0x0, 0, 0, 0, 1, 0x86]))
        XCTAssertTrue(channel.isActive)
        server.advanceTime(by: .seconds(1))
        XCTAssertFalse(channel.isActive)
    }

    func testRefusedConnectionGetsGoAwayEnhanceYourCalmAndIsClosed() throws {
        let server = EmbeddedServer()
        let channel = EmbeddedChannel(loop: server.loop)
        try server.pipeline.refuse(channel, over: .maxConnections, reason: "2 connections are open, the limit (max_connections)")
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()

        let written = try XCTUnwrap(channel.readOutbound(as: ByteBuffer.self))
        let client = try HTTP2Connection(role: .client)
        try client.receive(Array(written.readableBytesView))
        let goAways = client.takeEvents().compactMap { event -> UInt32? in
            if case .goAway(_, let code) = event { return code }
            return nil
        }
        XCTAssertEqual(goAways, [HTTP2ErrorCode.enhanceYourCalm])
        XCTAssertFalse(channel.isActive)
    }

    func testSettingsAnnounceTheConfiguredStreamAndHeaderListLimits() throws {
        let server = EmbeddedServer {
            $0.maxConcurrentStreams = 7
            $0.maxHeaderListBytes = 1_234
        }
        let channel = try rawConnection(to: server)
        var written: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written += buffer.readableBytesView }
        // SETTINGS entries: 16-bit id, 32-bit value (RFC 9113 §6.5.1).
        let settingsPayload = Array(written.dropFirst(9).prefix(Int(written[2])))
        var entries: [UInt16: UInt32] = [:]
        for offset in stride(from: 0, to: settingsPayload.count, by: 6) {
            let id = UInt16(settingsPayload[offset]) << 8 | UInt16(settingsPayload[offset + 1])
            entries[id] = settingsPayload[offset + 2..<offset + 6].reduce(0) { $0 << 8 | UInt32($1) }
        }
        XCTAssertEqual(written[3], 0x4, "the server speaks first with SETTINGS")
        XCTAssertEqual(entries[0x3], 7, "SETTINGS_MAX_CONCURRENT_STREAMS")
        XCTAssertEqual(entries[0x6], 1_234, "SETTINGS_MAX_HEADER_LIST_SIZE")
    }
}
