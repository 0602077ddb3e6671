import GoDuration
import LDLMGRPC
import LDLMHTTP2
import Logging
import NIOCore
import NIOSSL

/// What every connection's pipeline is built from; shared by all connections
/// of the server's event loops.
struct ConnectionPipeline {
    let manager: LockManager
    let router: RPCRouter
    let config: ServerConfig
    var tls: TLSContextProvider?
    let logger: Logger
    var transport = ConnectionTransport.tcp
    let loops: ConnectionLoops

    /// Connections may run on the manager's event loop and on `otherLoops`.
    init(manager: LockManager, router: RPCRouter, config: ServerConfig, tls: TLSContextProvider?, logger: Logger, otherLoops: [EventLoop] = []) {
        self.manager = manager
        self.router = router
        self.config = config
        self.tls = tls
        self.logger = logger
        loops = ConnectionLoops(owner: manager.eventLoop, others: otherLoops, manager: manager, router: router)
    }

    /// The same pipeline without TLS, for connections of the Unix socket at `path`.
    func overUnixSocket(path: String) -> ConnectionPipeline {
        var pipeline = self
        pipeline.tls = nil
        pipeline.transport = .unixSocket(path: path)
        return pipeline
    }

    /// Adds the handlers, in order from the socket:
    ///
    ///     NIOSSLServerHandler      TLS (when configured)
    ///     TLSHandshakeHandler      handshake timeout, ALPN h2, client identity
    ///     SessionHandler           one lock session per connection
    ///     GRPCConnectionHandler    HTTP/2 + gRPC calls, routed to the services;
    ///                              preface and header-block timeout; stops
    ///                              reading while our answers are not read
    ///     ConnectionManagementHandler  keepalive, idle, drain
    func configure(_ channel: Channel) throws {
        let handlers = channel.pipeline.syncOperations
        let connection = ConnectionContext(logger: logger, remoteAddress: remoteAddress(of: channel), transport: transport)
        let shared = loops.shared(by: channel.eventLoop)
        let remote = shared.bridge.map { RemoteSession(bridge: $0, connection: connection, channel: channel) }
        if let tls {
            try handlers.addHandler(NIOSSLServerHandler(context: tls.current))
            try handlers.addHandler(TLSHandshakeHandler(timeout: TimeAmount(config.handshakeTimeout), connection: connection))
        }
        try handlers.addHandler(SessionHandler(manager: manager, connection: connection, remote: remote))
        var limits = GRPCServerLimits()
        limits.maxMessageBytes = config.maxMessageBytes
        var http2Settings = HTTP2Settings()
        http2Settings.maxConcurrentStreams = UInt32(config.maxConcurrentStreams)
        http2Settings.maxHeaderListSize = UInt32(config.maxHeaderListBytes)
        let grpcHandler = GRPCConnectionHandler(
            grpc: try GRPCServerConnection(limits: limits, http2Settings: http2Settings, requestStreamPaths: router.requestStreamPaths),
            router: router,
            connection: connection,
            outputBuffer: shared.outputBuffer,
            stallTimeout: ClientStallTimeout(
                timeout: TimeAmount(config.prefaceTimeout),
                startsAfterTLSHandshake: tls != nil,
                connection: connection,
                metrics: router.metrics
            ),
            remote: remote
        )
        try handlers.addHandler(grpcHandler)
        let management = ConnectionManagementHandler(configuration: managementConfiguration, connection: connection, metrics: router.metrics) { [manager] in
            let (openStreams, lastStreamID) = grpcHandler.activity
            let busy: Bool
            if let remote {
                // The owner's answer to the previous check: a lock taken since
                // came with a call, which restarts the idle time anyway. Until
                // that answer is in (a stalled owner), the session counts as
                // busy: the answer before may predate a lock taken since.
                busy = remote.lastKnownBusy || remote.busyQueryOutstanding
                if !remote.busyQueryOutstanding {
                    remote.busyQueryOutstanding = true
                    remote.send(.busyQuery(remote))
                }
            } else {
                busy = connection.session.map(manager.isBusy) ?? false
            }
            return .init(openStreams: openStreams, lastStreamID: lastStreamID, sessionBusy: busy)
        }
        try handlers.addHandler(management)
    }

    /// Sets up a connection over a connection limit to be closed at once:
    /// without TLS, after a GOAWAY that tells an HTTP/2 client why.
    func refuse(_ channel: Channel, over limit: ServerLimit, reason: String) throws {
        router.metrics?.limitRefused(limit)
        let connection = ConnectionContext(logger: logger, remoteAddress: remoteAddress(of: channel), transport: transport)
        let handler = RefusedConnectionHandler(reason: reason, sendsGoAway: tls == nil, connection: connection)
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    /// A Unix socket's peer has no address of its own: name the socket.
    private func remoteAddress(of channel: Channel) -> String? {
        switch transport {
        case .tcp: return channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" }
        case .unixSocket(let path): return "unix:\(path)"
        }
    }

    private var managementConfiguration: ConnectionManagementStateMachine.Configuration {
        .init(
            keepaliveInterval: config.keepaliveInterval > .zero ? UInt64(config.keepaliveInterval.nanosecondsClamped) : nil,
            keepaliveTimeout: UInt64(max(config.keepaliveTimeout.nanosecondsClamped, 0)),
            idleTimeout: config.idleTimeout > .zero ? UInt64(config.idleTimeout.nanosecondsClamped) : nil
        )
    }
}
