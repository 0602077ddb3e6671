import Logging
import NIOCore
import NIOEmbedded
import NIOTLS
import XCTest

@testable import LDLMServer

final class TLSHandshakeTests: XCTestCase {
    func testHTTP2OrNoALPNProceedsAndOtherProtocolsAreRefused() {
        var withH2 = TLSHandshakeStateMachine()
        XCTAssertEqual(withH2.handshakeCompleted(negotiatedProtocol: "h2"), .proceed)
        var withoutALPN = TLSHandshakeStateMachine()
        XCTAssertEqual(withoutALPN.handshakeCompleted(negotiatedProtocol: nil), .proceed)
        var http1 = TLSHandshakeStateMachine()
        XCTAssertEqual(
            http1.handshakeCompleted(negotiatedProtocol: "http/1.1"),
            .refuse(reason: "refused TLS connection that negotiated http/1.1 instead of h2")
        )
    }

    func testTimeoutClosesOnlyWhileHandshaking() {
        var pending = TLSHandshakeStateMachine()
        XCTAssertTrue(pending.timeoutElapsed())
        var done = TLSHandshakeStateMachine()
        _ = done.handshakeCompleted(negotiatedProtocol: "h2")
        XCTAssertFalse(done.timeoutElapsed())
    }

    func testErrorsAreHandshakeRefusalsOnlyBeforeItCompletes() {
        var pending = TLSHandshakeStateMachine()
        XCTAssertTrue(pending.errorCaught())
        var done = TLSHandshakeStateMachine()
        _ = done.handshakeCompleted(negotiatedProtocol: "h2")
        XCTAssertFalse(done.errorCaught())
    }

    func testHandlerClosesAConnectionThatNeverHandshakes() throws {
        let channel = try handshakingChannel(timeout: .seconds(10))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(9_999))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive)
    }

    func testHandlerKeepsAConnectionThatHandshookInTime() throws {
        let channel = try handshakingChannel(timeout: .seconds(10))
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: "h2"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        XCTAssertTrue(channel.isActive)
    }

    func testHandlerClosesAConnectionThatNegotiatedHTTP1() throws {
        let channel = try handshakingChannel(timeout: .seconds(10))
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: "http/1.1"))
        XCTAssertFalse(channel.isActive)
    }

    private func handshakingChannel(timeout: TimeAmount) throws -> EmbeddedChannel {
        let connection = ConnectionContext(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), remoteAddress: nil)
        let channel = EmbeddedChannel(handler: TLSHandshakeHandler(timeout: timeout, connection: connection))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        return channel
    }
}
