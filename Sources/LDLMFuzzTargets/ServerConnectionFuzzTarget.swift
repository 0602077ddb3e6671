import LDLMCore
import LDLMServer
import Logging
import NIOCore
import NIOEmbedded

/// One server connection fed the input as the bytes a client sent: the
/// server's own pipeline (HTTP/2, gRPC, interceptors, services, lock
/// manager) on an embedded channel, whose time moves only when told.
///
/// After the input, time passes far enough for every lease, wait and
/// keepalive timeout to fire, and the connection closes; the server must then
/// hold no session and, as it releases locks on disconnect, no lock.
package enum ServerConnectionFuzzTarget {
    /// The admin password the fuzzed server accepts, so admin calls get past
    /// the admin interceptor.
    package static let adminPassword = "fuzz-admin"

    /// Longer than any keepalive or grpc-timeout the server acts on in one
    /// go; leases and waits beyond it end when the connection closes.
    private static let timePassingAfterInput = TimeAmount.hours(1)

    /// What the server did with the input, before time passed.
    package struct Outcome: Equatable {
        /// Locks the server held once it had read the input.
        package var locksHeld: Int
    }

    @discardableResult
    package static func run(_ input: UnsafeRawBufferPointer) -> Outcome {
        let loop = EmbeddedEventLoop()
        var config = ServerConfig()
        config.adminPassword = adminPassword
        let server = LockServerCore(
            eventLoop: loop,
            clock: EmbeddedLoopClock(loop),
            config: config,
            logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let channel = EmbeddedChannel(loop: loop)
        do {
            let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 4000)
            channel.remoteAddress = peer
            try server.configure(channel)
            try channel.connect(to: peer).wait()
        } catch {
            fatalError("the embedded connection did not start: \(error)")
        }

        // Errors the pipeline passes on are the server refusing bad input,
        // which is allowed; only crashes and the checks below are findings.
        try? channel.writeInbound(ByteBuffer(bytes: input))
        let outcome = Outcome(locksHeld: server.lockCount)
        discardOutput(of: channel)
        loop.advanceTime(by: timePassingAfterInput)
        discardOutput(of: channel)
        if channel.isActive {
            try? channel.close().wait()
        }
        loop.run()

        precondition(server.sessionCount == 0, "a closed connection left \(server.sessionCount) session(s) open")
        precondition(server.lockCount == 0, "a closed connection left \(server.lockCount) lock(s) held")
        _ = try? channel.finish()
        try? loop.syncShutdownGracefully()
        return outcome
    }

    /// Reads what the server wrote, as a client would, so it does not pile up.
    private static func discardOutput(of channel: EmbeddedChannel) {
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
    }
}

/// The lock core's clock, read from the embedded loop's virtual time.
private final class EmbeddedLoopClock: LockClock {
    private let loop: EmbeddedEventLoop

    init(_ loop: EmbeddedEventLoop) {
        self.loop = loop
    }

    var nanosecondsNow: UInt64 { loop.now.uptimeNanoseconds }
}
