import Logging
import NIOCore

/// Everything `ldlm-server` can be told, resolved from flags, `LDLM_*`
/// environment variables and a config file, in that order of precedence.
public struct ServerConfig: Equatable, Sendable {
    public var listenAddress = "localhost:3144"
    /// The shared secret every lock RPC over the network must present as
    /// `authorization` metadata.
    public var password: String?
    /// The secret that opens the admin service over the network, presented
    /// the same way; the lock password never does.
    public var adminPassword: String?
    /// Client certificate names that open the admin service over the network.
    var adminIdentities: [AdminIdentity] = []
    /// A Unix socket that serves every call, admin included, without a
    /// password (go-ldlm's IPC socket); nil: none.
    public var ipcSocketFile: String?
    /// Time between keepalive PINGs on each connection; zero turns keepalive off.
    public var keepaliveInterval: Duration = .seconds(60)
    /// A PING not acknowledged within this ends the connection and its session.
    public var keepaliveTimeout: Duration = .seconds(10)
    public var clearOnDisconnect = true
    public var logLevel: Logger.Level = .info
    public var maxNameBytes = 4096
    public var maxMessageBytes = 4 * 1024 * 1024
    /// PEM certificate chain and key; both set turns TLS on.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// PEM CA bundle that client certificates must chain to; set means mTLS.
    public var clientCAPath: String?
    /// Longest a new connection may take to complete its TLS handshake.
    public var handshakeTimeout: Duration = .seconds(10)
    /// How long a drain (SIGTERM, SIGINT) may take before connections are closed.
    public var shutdownTimeout: Duration = .seconds(10)
    /// A connection with no open streams, no held locks and no waiting calls for
    /// this long is closed with a GOAWAY; zero keeps idle connections open.
    public var idleTimeout: Duration = .zero
    /// The append-only log that keeps held locks across restarts; nil: none.
    public var stateFile: String?
    /// The shortest lease a lock restored from the state file gets.
    public var defaultLockTimeout: Duration = .seconds(600)
    /// Lock names held at once; creating one more is refused RESOURCE_EXHAUSTED.
    public var maxLocks = 1_000_000
    /// Queued `Lock` calls per lock; queueing one more is refused RESOURCE_EXHAUSTED.
    public var maxWaiters = 10_000
    /// Connections open at once over TCP and the Unix socket together.
    public var maxConnections = 10_000
    /// TCP connections open at once from one IP address.
    public var maxConnectionsPerIP = 1_000
    /// Streams one connection may have open, announced in SETTINGS.
    public var maxConcurrentStreams = 1_000
    /// Largest request header list (name + value + 32 per field), announced in SETTINGS.
    public var maxHeaderListBytes = 16 * 1024
    /// Time a connection gets to send its HTTP/2 preface, counted from
    /// accept or from the end of its TLS handshake, and to finish a header
    /// block once it has begun one.
    public var prefaceTimeout: Duration = .seconds(10)
    /// `host:port` of the REST gateway; nil: no gateway.
    public var restListenAddress: String?
    /// A REST session no request has used for this long ends, as a closed
    /// connection's session does.
    public var restSessionTimeout: Duration = .seconds(600)
    /// REST sessions open at once; each is a lock session that outlives its
    /// HTTP connections, so without a bound a `POST /session` flood would grow
    /// the table until memory ran out.
    public var maxRESTSessions = 10_000
    /// Event loops (threads) that serve connections, each taking its share;
    /// the first also owns the lock state, and calls from the others reach
    /// it in batches (``OwnerLoopBridge``).
    public var eventLoops = 1
    /// Where Prometheus metrics and the HTTP probes are served; nil: nowhere,
    /// and the server keeps no metrics at all.
    public var metricsListenAddress: String?
    /// etcd client URLs (`host:port`) of the cluster that elects this
    /// replica set's primary and keeps its locks; empty: a lone server.
    public var haEtcdEndpoints: [String] = []
    /// Names the replica set: its keys in etcd live under `/<cluster>/`.
    public var haCluster: String?
    /// `host:port` clients reach this replica at, which standbys name in
    /// their `ldlm-primary` trailer while it is primary.
    public var haAdvertiseAddress: String?
    /// TTL of the replica's etcd lease: a dead primary's key, and so its
    /// primacy, lasts at most this long.
    public var haLease: Duration = .seconds(5)
    /// How long a new primary keeps the locks it loaded for their holders to reclaim.
    public var haReclaimGrace: Duration = .seconds(15)
    public var haEtcdCAPath: String?
    public var haEtcdCertificatePath: String?
    public var haEtcdKeyPath: String?
    public var haEtcdUser: String?
    public var haEtcdPassword: String?
    /// Deliberate bugs, for testing checkers only (`--debug_fault`).
    public var debugFaults: Set<DebugFault> = []

    public var usesTLS: Bool { tlsCertificatePath != nil }
    /// Whether this server is one replica of a set over etcd.
    public var isReplica: Bool { !haEtcdEndpoints.isEmpty }

    public init() {}
}

/// A flag, variable or config entry that cannot be used; the server exits with
/// status 2 and prints `message` on one line.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }

    init(_ message: String) {
        self.message = message
    }
}

/// What the command line asked for.
public enum ConfigRequest: Equatable {
    case run(ServerConfig)
    case showHelp(String)
    case showVersion(String)
    case showTemplate(String)
}
