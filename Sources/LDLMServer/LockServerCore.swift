import LDLMCore
import Logging
import NIOCore

/// What a server serves its connections with, without its listeners: the
/// ``LockManager`` on its event loop (the owner loop), the services and
/// interceptors, and the connection pipeline over them, for connections on
/// the owner loop and on any `otherLoops`. ``LockServer`` binds sockets to it; the fuzz
/// targets feed it connections that have none (hence package access).
package struct LockServerCore {
    let manager: LockManager
    let pipeline: ConnectionPipeline
    /// Nil unless `--metrics_listen_address` is set.
    let metrics: ServerMetrics?

    /// `journal` writes the state file, whose largest token is `fencingTokenFloor`.
    init(
        eventLoop: EventLoop,
        clock: LockClock,
        config: ServerConfig,
        tls: TLSContextProvider?,
        logger: Logger,
        journal: StateJournal? = nil,
        fencingTokenFloor: UInt64 = 0,
        otherLoops: [EventLoop] = []
    ) {
        manager = LockManager(
            eventLoop: eventLoop,
            clock: clock,
            fencingTokens: .startingAboveWallClock(orAbove: fencingTokenFloor),
            maxNameBytes: config.maxNameBytes,
            maxLocks: config.maxLocks,
            maxWaiters: config.maxWaiters,
            clearOnDisconnect: config.clearOnDisconnect,
            journal: journal,
            grantsBeyondSize: config.debugFaults.contains(.skipSizeCheck)
        )
        metrics = config.metricsListenAddress.map { _ in
            ServerMetrics(
                tcpTransport: tls == nil ? "plaintext" : config.clientCAPath == nil ? "tls" : "mtls",
                stateFile: journal != nil,
                replica: config.isReplica,
                recordedOnSeveralLoops: !otherLoops.isEmpty
            )
        }
        manager.metrics = metrics
        journal?.metrics = metrics
        pipeline = ConnectionPipeline(
            manager: manager,
            router: RPCRouter(
                services: LockServer.services(manager: manager, logger: logger),
                // Last: a standby's refusal comes after any credential check.
                interceptors: LockServer.interceptors(config) + (config.isReplica ? [StandbyInterceptor(manager: manager)] : []),
                metrics: metrics
            ),
            config: config,
            tls: tls,
            logger: logger,
            otherLoops: otherLoops
        )
    }

    /// A plaintext server whose lock core reads time from `clock`.
    package init(eventLoop: EventLoop, clock: LockClock, config: ServerConfig, logger: Logger, otherLoops: [EventLoop] = []) {
        self.init(eventLoop: eventLoop, clock: clock, config: config, tls: nil, logger: logger, otherLoops: otherLoops)
    }

    /// Builds a new connection's handlers on `channel`, as for an accepted socket.
    package func configure(_ channel: Channel) throws {
        try pipeline.configure(channel)
    }

    package var lockCount: Int { manager.lockCount }
    package var sessionCount: Int { manager.sessionCount }
}
