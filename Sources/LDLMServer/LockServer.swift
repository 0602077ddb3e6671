import LDLMCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// The running server as a swift-service-lifecycle `Service`: one listener,
/// one event loop, one ``LockManager``. `run()` serves until graceful shutdown,
/// then drains: stop accepting, GOAWAY to every connection, answer waiting
/// calls UNAVAILABLE, let calls in flight finish, and close what is left once
/// the shutdown timeout passes. SIGHUP reloads the TLS certificate.
public final class LockServer: Service {
    private let config: ServerConfig
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let tls: TLSContextProvider?
    private let boundPort: EventLoopPromise<Int>

    /// Loads TLS material, if configured; a bad file is a ``ConfigError``.
    public init(config: ServerConfig, logger: Logger) throws(ConfigError) {
        self.config = config
        self.logger = logger
        if let certificatePath = config.tlsCertificatePath, let keyPath = config.tlsKeyPath {
            tls = try TLSContextProvider(certificatePath: certificatePath, keyPath: keyPath, clientCAPath: config.clientCAPath)
        } else {
            tls = nil
        }
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        boundPort = group.next().makePromise()
    }

    /// The port the listener got (useful with port 0); fails if binding failed.
    public var port: Int {
        get async throws { try await boundPort.futureResult.get() }
    }

    public func run() async throws {
        let eventLoop = group.next()
        let connections = OpenConnections()
        let manager = LockManager(
            eventLoop: eventLoop,
            clock: EventLoopClock(),
            fencingTokens: .startingAboveWallClock(),
            maxNameBytes: config.maxNameBytes,
            clearOnDisconnect: config.clearOnDisconnect
        )
        let serverChannel: Channel
        do {
            serverChannel = try await bind(manager: manager, connections: connections)
        } catch {
            boundPort.fail(error)
            try? await group.shutdownGracefully()
            throw ListenError(address: config.listenAddress, underlying: error)
        }
        boundPort.succeed(serverChannel.localAddress?.port ?? 0)
        logListening(serverChannel)

        let drained = eventLoop.makePromise(of: Void.self)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { tasks in
                tasks.addTask { await self.reloadTLSOnHangup() }
                try await drained.futureResult.get()
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            eventLoop.execute { self.drain(serverChannel, manager: manager, connections: connections, completing: drained) }
        }
        try await group.shutdownGracefully()
        logger.info("ldlm-server stopped")
    }

    private func bind(manager: LockManager, connections: OpenConnections) async throws -> Channel {
        let address = try ListenAddress(parsing: config.listenAddress)
        let pipeline = ConnectionPipeline(
            manager: manager,
            router: RPCRouter(services: Self.services(manager: manager), interceptors: interceptors),
            config: config,
            tls: tls,
            logger: logger
        )
        return try await ServerBootstrap(group: manager.eventLoop)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try pipeline.configure(channel)
                    connections.add(channel)
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }

    /// Every service the server offers. Adding one is one line here.
    private static func services(manager: LockManager) -> [RPCService] {
        [
            LockService(manager: manager),
        ]
    }

    private var interceptors: [RPCInterceptor] {
        config.password.map { [PasswordInterceptor(password: $0)] } ?? []
    }

    /// Answers every waiting call UNAVAILABLE, stops accepting and asks every
    /// connection to drain; `drained` completes when all have closed, which
    /// the shutdown timeout forces.
    private func drain(_ serverChannel: Channel, manager: LockManager, connections: OpenConnections, completing drained: EventLoopPromise<Void>) {
        logger.info("ldlm-server draining", metadata: [
            "connections": "\(connections.count)",
            "shutdown_timeout": "\(formatGoDuration(config.shutdownTimeout))",
        ])
        serverChannel.close(promise: nil)
        manager.beginDrain()
        let timeout = manager.eventLoop.scheduleTask(in: TimeAmount(config.shutdownTimeout)) {
            self.logger.warning("shutdown timeout passed, closing remaining connections", metadata: ["connections": "\(connections.count)"])
            connections.closeAll()
        }
        connections.quiesce {
            timeout.cancel()
            drained.succeed()
        }
    }

    private func reloadTLSOnHangup() async {
        guard let tls else { return }
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            do {
                try tls.reload()
                logger.info("reloaded TLS certificate")
            } catch {
                logger.error("TLS reload failed, keeping the previous certificate", metadata: ["error": "\(error.message)"])
            }
        }
    }

    private func logListening(_ channel: Channel) {
        logger.info("ldlm-server listening", metadata: [
            "address": "\(channel.localAddress?.ipAddress ?? "?"):\(channel.localAddress?.port ?? 0)",
            "keepalive_interval": "\(formatGoDuration(config.keepaliveInterval))",
            "keepalive_timeout": "\(formatGoDuration(config.keepaliveTimeout))",
            "clear_on_disconnect": "\(config.clearOnDisconnect)",
            "password": "\(config.password == nil ? "off" : "on")",
            "tls": "\(tls == nil ? "off" : config.clientCAPath == nil ? "on" : "mutual")",
        ])
    }
}

/// The listener could not be bound; `ldlm-server` exits with status 2.
public struct ListenError: Error, CustomStringConvertible {
    let address: String
    let underlying: Error

    public var description: String { "cannot listen on \(address): \(underlying)" }
}
