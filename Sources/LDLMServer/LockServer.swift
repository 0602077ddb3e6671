#if canImport(Glibc)
import Glibc
#endif
import GoDuration
import LDLMCore
import LDLMStateLog
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// The running server as a swift-service-lifecycle `Service`: a TCP listener
/// and optionally a Unix socket (``ServerListeners``), `--event_loops` event
/// loops serving connections, one ``LockManager`` on the first of them (the
/// owner loop, which also runs the listeners, the REST gateway, the metrics
/// port, the state journal and the replica machinery). `run()` serves until graceful shutdown,
/// then drains: stop accepting, GOAWAY to every connection, answer waiting
/// calls UNAVAILABLE, let calls in flight finish, and close what is left once
/// the shutdown timeout passes. SIGHUP reloads the TLS certificate.
public final class LockServer: Service {
    private let config: ServerConfig
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let tls: TLSContextProvider?
    private let stateFile: (file: StateLogFile, recovered: RecoveredState)?

    /// Loads TLS material, if configured, and reads the state file; a bad
    /// TLS file is a ``ConfigError``, a state file that cannot be used a
    /// ``StateFileError``.
    public init(config: ServerConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        if let certificatePath = config.tlsCertificatePath, let keyPath = config.tlsKeyPath {
            tls = try TLSContextProvider(certificatePath: certificatePath, keyPath: keyPath, clientCAPath: config.clientCAPath)
        } else {
            tls = nil
        }
        if let path = config.stateFile {
            let (file, contents) = try StateLogFile.open(path: path) { logger.warning("\($0)") }
            stateFile = (file, RecoveredState(replaying: contents.records))
        } else {
            stateFile = nil
        }
        group = MultiThreadedEventLoopGroup(numberOfThreads: config.eventLoops)
    }

    public func run() async throws {
        let loops = Array(group.makeIterator())
        let eventLoop = loops[0]
        await Self.nameThreads(of: loops)
        let connections = OpenConnections(maxConnections: config.maxConnections, maxConnectionsPerIP: config.maxConnectionsPerIP)
        if !config.debugFaults.isEmpty {
            logger.warning("DEBUG FAULTS ON: this server breaks its own guarantees on purpose, for testing only", metadata: [
                "debug_faults": "\(config.debugFaults.map(\.rawValue).sorted().joined(separator: ","))",
            ])
        }
        let journal = stateFile.map {
            StateJournal(
                file: $0.file, eventLoop: eventLoop, logger: logger,
                acknowledgesBeforeSync: config.debugFaults.contains(.acknowledgeBeforeSync)
            )
        }
        let core = LockServerCore(
            eventLoop: eventLoop,
            clock: EventLoopClock(),
            config: config,
            tls: tls,
            logger: logger,
            journal: journal,
            fencingTokenFloor: stateFile?.recovered.fencingTokenHighWater ?? 0,
            otherLoops: Array(loops.dropFirst())
        )
        let (manager, pipeline) = (core.manager, core.pipeline)
        let replica: Replica?
        if config.isReplica {
            // etcd's connections stay on the owner loop, with the manager they feed.
            replica = try Replica(config: config, manager: manager, eventLoopGroup: eventLoop, logger: logger)
            // Before anything else can reach the manager: nothing races this.
            manager.startAsStandby()
        } else {
            replica = nil
        }
        if let stateFile {
            // Before anything else can reach the manager: nothing races this.
            try manager.restore(stateFile.recovered, defaultLease: config.defaultLockTimeout)
            logger.info("state file loaded", metadata: [
                "path": "\(stateFile.file.path)",
                "locks_held": "\(stateFile.recovered.holds.count)",
                "default_lock_timeout": "\(formatGoDuration(config.defaultLockTimeout))",
            ])
        }
        // Made before any listener is bound, so nothing races it to the manager.
        let gateway = config.restListenAddress.map { _ in
            RESTGateway(
                manager: manager,
                password: config.password,
                idleTimeout: config.restSessionTimeout,
                maxSessions: config.maxRESTSessions,
                logger: logger,
                metrics: core.metrics
            )
        }
        var boundListeners: [Channel]
        let socketFile: UnixSocketFile?
        do {
            (boundListeners, socketFile) = try await ServerListeners.bind(
                config: config, pipeline: pipeline, connections: connections, connectionLoops: group
            )
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        defer { socketFile?.remove() }
        logListening(boundListeners[0])
        if let gateway, let restAddress = config.restListenAddress {
            do {
                let rest = try await bindREST(restAddress, gateway: gateway, eventLoop: eventLoop, connections: connections)
                boundListeners.append(rest)
            } catch {
                for listener in boundListeners { try? await listener.close() }
                try? await group.shutdownGracefully()
                throw error
            }
        }
        let listeners = boundListeners
        let metricsPort: MetricsPort?
        do {
            metricsPort = try await bindMetrics(core, counting: connections, eventLoop: eventLoop)
        } catch {
            for listener in listeners { try? await listener.close() }
            try? await group.shutdownGracefully()
            throw error
        }

        let drained = eventLoop.makePromise(of: Void.self)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { tasks in
                tasks.addTask { await self.reloadTLSOnHangup() }
                if let replica {
                    tasks.addTask { await replica.run() }
                }
                try await drained.futureResult.get()
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            eventLoop.execute {
                self.drain(
                    listeners, manager: manager, loops: pipeline.loops, replica: replica, connections: connections,
                    metricsPort: metricsPort, completing: drained
                )
            }
        }
        try await group.shutdownGracefully()
        logger.info("ldlm-server stopped")
    }

    /// The REST gateway's HTTP/1.1 listener, on the manager's event loop so
    /// requests reach the gateway without a hop, behind the same TLS (and
    /// client CA) and connection limits as gRPC; a drain closes it with the rest.
    private func bindREST(_ address: String, gateway: RESTGateway, eventLoop: EventLoop, connections: OpenConnections) async throws -> Channel {
        let channel: Channel
        do {
            channel = try await HTTPListener.bind(
                address,
                eventLoop: eventLoop,
                tls: tls,
                limits: HTTPListenerLimits(maxBodyBytes: RESTGateway.maxBodyBytes(maxNameBytes: config.maxNameBytes)),
                connections: connections,
                responder: RESTResponder(gateway: gateway)
            )
        } catch {
            throw ListenError(address: address, underlying: error)
        }
        logger.info("REST gateway listening", metadata: [
            "address": "\(channel.localAddress?.ipAddress ?? "?"):\(channel.localAddress?.port ?? 0)",
            "rest_session_timeout": "\(formatGoDuration(config.restSessionTimeout))",
            "max_rest_sessions": "\(config.maxRESTSessions)",
        ])
        return channel
    }

    /// Every service the server offers. Adding one is one line in `served`;
    /// reflection lists it and describes it from its proto.
    static func services(manager: LockManager, logger: Logger) -> [RPCService] {
        let served: [RPCService] = [
            LockService(manager: manager),
            AdminService(manager: manager, logger: logger),
            HealthService(manager: manager),
        ]
        return served + ReflectionService.bothVersions(listing: served)
    }

    /// Each guards the services it names (``RPCInterceptor/guards(service:)``):
    /// the lock password the lock service and reflection, the admin rule the
    /// admin service; none the health service, which probes must reach
    /// without secrets.
    static func interceptors(_ config: ServerConfig) -> [RPCInterceptor] {
        var interceptors: [RPCInterceptor] = [
            AdminAccessInterceptor(password: config.adminPassword, identities: config.adminIdentities),
        ]
        if let password = config.password {
            interceptors.append(PasswordInterceptor(password: password))
        }
        return interceptors
    }

    /// The metrics listener and its connections, apart from the gRPC ones: a
    /// drain does not wait for scrapers or probes, which go on being answered
    /// (`/readyz` 503) until the drain ends.
    private struct MetricsPort {
        let listener: Channel
        let connections: OpenConnections

        func close() {
            listener.close(promise: nil)
            connections.closeAll()
        }
    }

    /// Serves ``MetricsResponder`` at `--metrics_listen_address`, if set, with
    /// the gRPC connections `served` as its connection gauges,
    /// after the gRPC listeners and the state file, so that `/readyz` is never
    /// ready before the server is. Plaintext, even with `--tls_cert`:
    /// orchestrators' probes present no client certificate, and the port
    /// tells counts, never a lock name, key or secret.
    private func bindMetrics(_ core: LockServerCore, counting served: OpenConnections, eventLoop: EventLoop) async throws -> MetricsPort? {
        guard let address = config.metricsListenAddress, let metrics = core.metrics else { return nil }
        let connections = OpenConnections(maxConnections: Self.maxMetricsConnections, maxConnectionsPerIP: Self.maxMetricsConnections)
        let responder = MetricsResponder(metrics: metrics, manager: core.manager, connections: served)
        let listener: Channel
        do {
            listener = try await HTTPListener.bind(
                address, eventLoop: eventLoop, tls: nil, limits: HTTPListenerLimits(), connections: connections, responder: responder
            )
        } catch {
            throw ListenError(address: address, underlying: error)
        }
        logger.info("serving metrics and probes", metadata: [
            "address": "\(listener.localAddress?.ipAddress ?? "?"):\(listener.localAddress?.port ?? 0)",
        ])
        return MetricsPort(listener: listener, connections: connections)
    }

    /// Scrapers and probes open few connections; more are refused at once.
    private static let maxMetricsConnections = 64

    /// Answers every waiting call UNAVAILABLE, stops accepting and asks every
    /// connection to drain; `drained` completes when all have closed, which
    /// the shutdown timeout forces, and a replica has given up its etcd
    /// lease. The metrics port closes last.
    private func drain(
        _ listeners: [Channel],
        manager: LockManager,
        loops: ConnectionLoops,
        replica: Replica?,
        connections: OpenConnections,
        metricsPort: MetricsPort?,
        completing drained: EventLoopPromise<Void>
    ) {
        logger.info("ldlm-server draining", metadata: [
            "connections": "\(connections.count)",
            "shutdown_timeout": "\(formatGoDuration(config.shutdownTimeout))",
        ])
        listeners.forEach { $0.close(promise: nil) }
        manager.beginDrain()
        // The waiters' UNAVAILABLE answers and health's NOT_SERVING reach
        // connections on other loops before they are told to drain.
        loops.handOverNow()
        let timeout = manager.eventLoop.scheduleTask(in: TimeAmount(config.shutdownTimeout)) {
            self.logger.warning("shutdown timeout passed, closing remaining connections", metadata: ["connections": "\(connections.count)"])
            connections.closeAll()
        }
        func allClosed() {
            timeout.cancel()
            metricsPort?.close()
            let closed = manager.journal?.close() ?? manager.eventLoop.makeSucceededVoidFuture()
            guard let replica else { return closed.cascade(to: drained) }
            // A primary's holds stay in etcd for the next primary, which
            // takes over at once when the lease goes with the drain.
            closed.whenComplete { _ in drained.completeWithTask { await replica.resign() } }
        }
        connections.quiesce {
            // On the loop of the connection that closed last.
            manager.eventLoop.execute { allClosed() }
        }
    }

    /// Names each loop's thread, for `top -H` and per-thread CPU in
    /// `/proc/PID/task`: `ldlm-owner`, then `ldlm-loop-1`, `ldlm-loop-2`…
    private static func nameThreads(of loops: [EventLoop]) async {
        for (index, loop) in loops.enumerated() {
            let name = index == 0 ? "ldlm-owner" : "ldlm-loop-\(index)"
            #if os(Linux)
            // What pthread_setname_np does, which Swift's Glibc module leaves out.
            try? await loop.submit {
                let file = open("/proc/thread-self/comm", O_WRONLY)
                guard file >= 0 else { return }
                _ = name.withCString { write(file, $0, strlen($0)) }
                close(file)
            }.get()
            #endif
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
            "event_loops": "\(config.eventLoops)",
            "password": "\(config.password == nil ? "off" : "on")",
            "tls": "\(tls == nil ? "off" : config.clientCAPath == nil ? "on" : "mutual")",
            "ipc_socket_file": "\(config.ipcSocketFile ?? "off")",
            "state_file": "\(config.stateFile ?? "off")",
            "admin_over_network": "\(config.adminPassword == nil && config.adminIdentities.isEmpty ? "off" : "on")",
            "replica_set": "\(config.isReplica ? "\(config.haCluster ?? "") via \(config.haEtcdEndpoints.joined(separator: ","))" : "off")",
        ])
    }
}
