import NIOCore
import NIOEmbedded
import XCTest

@testable import LDLMServer

final class OpenConnectionsTests: XCTestCase {
    /// Records the quiesce events that reach the end of a pipeline.
    private final class QuiesceRecorder: ChannelInboundHandler {
        typealias InboundIn = Any
        var quiesced = 0

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is ChannelShouldQuiesceEvent { quiesced += 1 }
        }
    }

    private func openChannel(on loop: EmbeddedEventLoop, _ connections: OpenConnections) throws -> (EmbeddedChannel, QuiesceRecorder) {
        let recorder = QuiesceRecorder()
        let channel = EmbeddedChannel(handler: recorder, loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        XCTAssertEqual(connections.admit(channel, ip: "127.0.0.1"), .admitted)
        return (channel, recorder)
    }

    func testQuiesceReachesEveryConnectionAndReportsWhenTheLastHasClosed() throws {
        let loop = EmbeddedEventLoop()
        let connections = OpenConnections()
        let (first, firstRecorder) = try openChannel(on: loop, connections)
        let (second, secondRecorder) = try openChannel(on: loop, connections)
        var allClosed = 0
        connections.quiesce { allClosed += 1 }
        XCTAssertEqual([firstRecorder.quiesced, secondRecorder.quiesced], [1, 1])

        try first.close().wait()
        loop.run()
        XCTAssertEqual(allClosed, 0, "one connection is still open")
        XCTAssertEqual(connections.count, 1)
        try second.close().wait()
        loop.run()
        XCTAssertEqual(allClosed, 1)
        XCTAssertEqual(connections.count, 0)
    }

    func testQuiesceWithNoConnectionsReportsAtOnce() {
        let connections = OpenConnections()
        var allClosed = 0
        connections.quiesce { allClosed += 1 }
        XCTAssertEqual(allClosed, 1)
    }

    func testCloseAllClosesWhatADrainLeftOpen() throws {
        let loop = EmbeddedEventLoop()
        let connections = OpenConnections()
        let channels = try (0..<3).map { _ in try openChannel(on: loop, connections).0 }
        var allClosed = 0
        connections.quiesce { allClosed += 1 }
        connections.closeAll()
        loop.run()
        XCTAssertTrue(channels.allSatisfy { !$0.isActive })
        XCTAssertEqual(allClosed, 1)
    }
}
