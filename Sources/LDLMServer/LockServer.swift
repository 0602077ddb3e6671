import LDLMCore
import LDLMGRPC
import LDLMHTTP2
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// The running server: one listener, one event loop, one lock table.
///
/// Every connection and the lock table share a single event loop thread. Lock
/// operations are tiny next to HTTP/2 and protobuf work, and one thread means
/// grants between connections need no locks and cannot race.
public final class LockServer {
    private let config: ServerConfig
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let tls: TLSContextProvider?
    private var channel: Channel?

    /// Loads TLS material, if configured; a bad file is a ``ConfigError``.
    public init(config: ServerConfig, logger: Logger) throws(ConfigError) {
        self.config = config
        self.logger = logger
        if let certificatePath = config.tlsCertificatePath, let keyPath = config.tlsKeyPath {
            tls = try TLSContextProvider(certificatePath: certificatePath, keyPath: keyPath, clientCAPath: config.clientCAPath)
        } else {
            tls = nil
        }
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Re-reads the certificate, key and client CA for connections accepted from
    /// now on; existing connections keep theirs. On failure the old ones stay.
    public func reloadTLS() {
        guard let tls else { return }
        do {
            try tls.reload()
            logger.info("reloaded TLS certificate")
        } catch {
            logger.error("TLS reload failed, keeping the previous certificate", metadata: ["error": "\(error.message)"])
        }
    }

    /// Binds the listener; returns the bound port (useful with port 0).
    @discardableResult
    public func start() throws -> Int {
        let address = try ListenAddress(parsing: config.listenAddress)
        let eventLoop = group.next()
        let table = LockTable(clock: EventLoopClock(), maxNameBytes: config.maxNameBytes)
        let service = LDLMService(table: table, password: config.password)
        let expiryScheduler = ExpiryScheduler(table: table, eventLoop: eventLoop)
        let outputBuffer = SharedOutputBuffer()
        let config = self.config
        let logger = self.logger
        let tls = self.tls
        var limits = GRPCServerLimits()
        limits.maxMessageBytes = config.maxMessageBytes

        let bootstrap = ServerBootstrap(group: eventLoop)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current))
                    }
                    let grpc = try GRPCServerConnection(limits: limits)
                    let handler = LDLMConnectionHandler(
                        grpc: grpc,
                        service: service,
                        config: config,
                        expiryScheduler: expiryScheduler,
                        outputBuffer: outputBuffer,
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
            "keepalive_interval": "\(formatGoDuration(config.keepaliveInterval))",
            "keepalive_timeout": "\(formatGoDuration(config.keepaliveTimeout))",
            "clear_on_disconnect": "\(config.clearOnDisconnect)",
            "password": "\(config.password == nil ? "off" : "on")",
            "tls": "\(tls == nil ? "off" : config.clientCAPath == nil ? "on" : "mutual")",
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
