import LDLMCore
import LDLMGRPC
import LDLMHTTP2
import Logging
import NIOCore
import NIOPosix

/// The running server: one listener, one event loop, one lock table.
///
/// Every connection and the lock table share a single event loop thread. Lock
/// operations are tiny next to HTTP/2 and protobuf work, and one thread means
/// grants between connections need no locks and cannot race.
public final class LockServer {
    private let config: ServerConfig
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private var channel: Channel?

    public init(config: ServerConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Binds the listener; returns the bound port (useful with port 0).
    @discardableResult
    public func start() throws -> Int {
        let address = try ListenAddress(parsing: config.listenAddress)
        let eventLoop = group.next()
        let table = LockTable(clock: EventLoopClock(), maxNameBytes: config.maxNameBytes)
        let service = LDLMService(table: table, password: config.password)
        let expiryScheduler = ExpiryScheduler(table: table, eventLoop: eventLoop)
        let config = self.config
        let logger = self.logger
        var limits = GRPCServerLimits()
        limits.maxMessageBytes = config.maxMessageBytes

        let bootstrap = ServerBootstrap(group: eventLoop)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let grpc = try GRPCServerConnection(limits: limits)
                    let handler = LDLMConnectionHandler(
                        grpc: grpc,
                        service: service,
                        config: config,
                        expiryScheduler: expiryScheduler,
                        logger: logger
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let channel = try bootstrap.bind(host: address.host, port: address.port).wait()
        self.channel = channel
        let port = channel.localAddress?.port ?? address.port
        logger.info("ldlm-server listening", metadata: [
            "address": "\(channel.localAddress?.ipAddress ?? address.host):\(port)",
            "keepalive_interval": "\(formatGoDuration(config.keepaliveIntervalNanoseconds))",
            "keepalive_timeout": "\(formatGoDuration(config.keepaliveTimeoutNanoseconds))",
            "clear_on_disconnect": "\(config.clearOnDisconnect)",
            "password": "\(config.password == nil ? "off" : "on")",
        ])
        return port
    }

    /// Blocks until the listener is closed by ``stop()``.
    public func waitUntilClosed() throws {
        try channel?.closeFuture.wait()
    }

    /// Stops accepting, closes every connection (releasing their sessions) and
    /// the event loop.
    public func stop() {
        logger.info("ldlm-server stopping")
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }
}
