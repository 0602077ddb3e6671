import LDLMCore
import LDLMGRPC
import LDLMProtocol
import NIOConcurrencyHelpers
import Prometheus

/// The server's Prometheus metrics, served at `--metrics_listen_address`
/// (``MetricsResponder``). Made only when that is set: every place that
/// records holds an optional, so a server without metrics pays a nil check
/// and nothing is bootstrapped.
///
/// The registry is this server's own, not swift-metrics' process-wide
/// factory, so servers in one process (tests) keep separate counts, and the
/// hot path calls the Prometheus handles directly rather than through the
/// swift-metrics API's existential handlers.
///
/// Recorded on the event loops that serve connections and scraped on the
/// lock manager's: Prometheus' own handles are safe on any loop, and the RPC
/// table below is locked only when connections run on several loops
/// (`--event_loops`). Handles are made once, and an RPC finds its counter by index in a table
/// (method × outcome), never by building labels. Its duration goes to an
/// ``RPCDurationHistogram`` of our own rather than swift-prometheus' (see
/// there why), written out after the registry. What the lock core already
/// counts (locks, holders, waiters, sessions, lease expiries, disconnect
/// releases, connections) is read when Prometheus scrapes
/// (``refresh(from:connections:)``), not kept up to date on every call.
final class ServerMetrics {
    let registry = PrometheusCollectorRegistry()

    // MARK: RPCs

    /// `service` and `method` label values, by the index ``RPCRouter`` gives
    /// each route; index 0 is every path that names no method of ours.
    private var rpcMethods: [(service: String, method: String)] = [("unknown", "unknown")]
    /// Made at a series' first observation, so a scrape lists only outcomes
    /// that happened; indexed by `method * RPCOutcomeLabel.count + outcome`.
    private var rpcCounters: [Counter?] = Array(repeating: nil, count: RPCOutcomeLabel.count)
    private var rpcDurations: [RPCDurationHistogram?] = [nil]
    /// Guards the RPC table when several loops record into it; nil on one loop.
    private let rpcTableLock: NIOLock?

    static let unknownMethod = 0

    // MARK: Events counted as they happen

    private let keepaliveTimeouts: Counter
    private let authFailures: [Counter]
    private let limitRefusals: [Counter]

    // MARK: Read at scrape time

    private let locksHeld: Gauge
    private let lockHolders: Gauge
    private let lockWaiters: Gauge
    private let sessions: Gauge
    private let draining: Gauge
    /// The TCP listener's connections under its transport's label, and the Unix socket's.
    private let tcpConnections: Gauge
    private let unixSocketConnections: Gauge
    private var leaseExpiries: MirroredCounter
    private var disconnectReleases: MirroredCounter

    // MARK: State file

    private var stateFileSync: (duration: DurationHistogram, batchRecords: ValueHistogram)?

    // MARK: Replica set

    private var replica: (
        isPrimary: Gauge, stepDowns: MirroredCounter, commitDuration: DurationHistogram, commitWrites: ValueHistogram
    )?

    static let syncDurationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
    ]
    static let syncBatchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]

    /// `tcpTransport` labels the TCP listener's connections: `plaintext`,
    /// `tls` or `mtls`.
    init(tcpTransport: String, stateFile: Bool, replica isReplica: Bool = false, recordedOnSeveralLoops: Bool = false) {
        rpcTableLock = recordedOnSeveralLoops ? NIOLock() : nil
        let registry = self.registry
        keepaliveTimeouts = registry.makeCounter(descriptor: Self.name(
            "ldlm_keepalive_timeouts_total", "Connections closed because a keepalive PING went unanswered"
        ))
        let authFailuresName = Self.name(
            "ldlm_auth_failures_total", "Calls refused for a wrong or missing credential, by the credential the service asks for"
        )
        authFailures = RPCCredential.allCases.map { registry.makeCounter(descriptor: authFailuresName, labels: [("credential", $0.label)]) }
        let refusalsName = Self.name(
            "ldlm_limit_refusals_total", "Calls or connections refused, or connections closed, for going over a server limit, by its flag"
        )
        limitRefusals = ServerLimit.allCases.map { registry.makeCounter(descriptor: refusalsName, labels: [("limit", $0.label)]) }

        locksHeld = registry.makeGauge(descriptor: Self.name("ldlm_locks_held", "Lock names with at least one holder"))
        lockHolders = registry.makeGauge(descriptor: Self.name(
            "ldlm_lock_holders", "Holds of all locks together (a lock of size N has up to N)"
        ))
        lockWaiters = registry.makeGauge(descriptor: Self.name("ldlm_lock_waiters", "Lock calls queued for a lock held by others"))
        sessions = registry.makeGauge(descriptor: Self.name("ldlm_sessions", "Lock sessions: one per gRPC connection, plus the REST gateway's"))
        draining = registry.makeGauge(descriptor: Self.name(
            "ldlm_draining", "1 from SIGTERM or SIGINT until the server exits (/readyz answers 503), else 0"
        ))
        let connectionsName = Self.name("ldlm_connections", "Open connections to the gRPC port, the Unix socket and the REST port, by transport")
        tcpConnections = registry.makeGauge(descriptor: connectionsName, labels: [("transport", tcpTransport)])
        unixSocketConnections = registry.makeGauge(descriptor: connectionsName, labels: [("transport", "unix")])
        leaseExpiries = MirroredCounter(registry.makeCounter(descriptor: Self.name(
            "ldlm_lease_expiries_total", "Holds released because their lease ran out"
        )))
        disconnectReleases = MirroredCounter(registry.makeCounter(descriptor: Self.name(
            "ldlm_locks_released_on_disconnect_total", "Holds released because their connection closed"
        )))

        if stateFile {
            stateFileSync = (
                registry.makeDurationHistogram(
                    descriptor: Self.name("ldlm_state_file_sync_duration_seconds", "Time to write and fdatasync one batch of state file records"),
                    buckets: Self.syncDurationBuckets
                ),
                registry.makeValueHistogram(
                    descriptor: Self.name("ldlm_state_file_sync_batch_records", "Records written by one state file sync (group commit)"),
                    buckets: Self.syncBatchBuckets
                )
            )
        }
        if isReplica {
            replica = (
                registry.makeGauge(descriptor: Self.name("ldlm_replica_primary", "1 while this replica is its set's primary, else 0")),
                MirroredCounter(registry.makeCounter(descriptor: Self.name(
                    "ldlm_replica_step_downs_total", "Times this replica stopped being primary (etcd write failed, lease lost or lapsed)"
                ))),
                registry.makeDurationHistogram(
                    descriptor: Self.name("ldlm_etcd_commit_duration_seconds", "Time from sending one batch of hold writes to etcd to its commit"),
                    buckets: Self.syncDurationBuckets
                ),
                registry.makeValueHistogram(
                    descriptor: Self.name("ldlm_etcd_commit_batch_writes", "Hold writes in one etcd Txn (group commit; at most 127)"),
                    buckets: Self.syncBatchBuckets
                )
            )
        }
    }

    private static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    // MARK: Recording

    /// Gives a method its index for ``rpcEnded(method:outcome:nanoseconds:)``.
    func addRPCMethod(service: String, method: String) -> Int {
        rpcMethods.append((service, method))
        rpcCounters += Array(repeating: nil, count: RPCOutcomeLabel.count)
        rpcDurations.append(nil)
        return rpcMethods.count - 1
    }

    /// A call to method number `method` ended with `outcome`
    /// (``RPCOutcomeLabel``) after `nanoseconds`.
    func rpcEnded(method: Int, outcome: Int, nanoseconds: UInt64) {
        guard let rpcTableLock else { return recordRPC(method: method, outcome: outcome, nanoseconds: nanoseconds) }
        rpcTableLock.withLock { recordRPC(method: method, outcome: outcome, nanoseconds: nanoseconds) }
    }

    private func recordRPC(method: Int, outcome: Int, nanoseconds: UInt64) {
        let slot = method * RPCOutcomeLabel.count + outcome
        (rpcCounters[slot] ?? makeRPCCounter(slot)).increment()
        (rpcDurations[method] ?? makeRPCDuration(method)).record(nanoseconds: nanoseconds)
    }

    private func makeRPCCounter(_ slot: Int) -> Counter {
        let (service, method) = rpcMethods[slot / RPCOutcomeLabel.count]
        let counter = registry.makeCounter(
            descriptor: Self.name("ldlm_rpcs_total", "RPCs answered, by method and outcome: OK, the LDLM error in the response, or the gRPC status"),
            labels: [("service", service), ("method", method), ("outcome", RPCOutcomeLabel.names[slot % RPCOutcomeLabel.count])]
        )
        rpcCounters[slot] = counter
        return counter
    }

    private func makeRPCDuration(_ method: Int) -> RPCDurationHistogram {
        let histogram = RPCDurationHistogram(labels: #"service="\#(rpcMethods[method].service)",method="\#(rpcMethods[method].method)""#)
        rpcDurations[method] = histogram
        return histogram
    }

    func keepaliveTimedOut() {
        keepaliveTimeouts.increment()
    }

    func authFailed(_ credential: RPCCredential) {
        authFailures[credential.rawValue].increment()
    }

    func limitRefused(_ limit: ServerLimit) {
        limitRefusals[limit.rawValue].increment()
    }

    /// One state file sync of `records` records took `nanoseconds`.
    func etcdCommitted(writes: Int, nanoseconds: UInt64) {
        guard let replica else { return }
        replica.commitDuration.record(.nanoseconds(Int64(clamping: nanoseconds)))
        replica.commitWrites.record(Double(writes))
    }

    func stateFileSynced(records: UInt64, nanoseconds: UInt64) {
        guard let stateFileSync else { return }
        stateFileSync.duration.record(.nanoseconds(Int64(clamping: nanoseconds)))
        stateFileSync.batchRecords.record(Double(records))
    }

    // MARK: Scraping

    /// Reads what the lock core counts into the gauges and counters; on the
    /// manager's event loop, just before the registry is written out.
    func refresh(from manager: LockManager, connections: OpenConnections) {
        locksHeld.set(to: Double(manager.lockCount))
        lockHolders.set(to: Double(manager.holderCount))
        lockWaiters.set(to: Double(manager.waiterCount))
        sessions.set(to: Double(manager.sessionCount))
        draining.set(to: manager.isDraining ? 1 : 0)
        tcpConnections.set(to: Double(connections.count - connections.unixSocketCount))
        unixSocketConnections.set(to: Double(connections.unixSocketCount))
        leaseExpiries.catchUp(to: manager.leaseExpiryCount)
        disconnectReleases.catchUp(to: manager.locksReleasedOnDisconnect)
        if replica != nil {
            replica!.isPrimary.set(to: manager.role == .primary ? 1 : 0)
            replica!.stepDowns.catchUp(to: manager.stepDownCount)
        }
    }

    /// The registry in the Prometheus text format, version 0.0.4.
    func exposition() -> [UInt8] {
        guard let rpcTableLock else { return unlockedExposition() }
        return rpcTableLock.withLock { unlockedExposition() }
    }

    private func unlockedExposition() -> [UInt8] {
        var text = registry.emitToBuffer()
        let durations = rpcDurations.compactMap { $0 }
        if !durations.isEmpty {
            text += RPCDurationHistogram.header.utf8
            for histogram in durations { histogram.emit(into: &text) }
        }
        return text
    }

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// A counter whose count something else keeps as it happens (the lock table
/// counts lease expiries); each scrape adds what it gained since the last.
private struct MirroredCounter {
    let counter: Counter
    private var mirrored: UInt64 = 0

    init(_ counter: Counter) {
        self.counter = counter
    }

    mutating func catchUp(to total: UInt64) {
        guard total > mirrored else { return }
        counter.increment(by: Int64(clamping: total - mirrored))
        mirrored = total
    }
}

/// The `outcome` label of `ldlm_rpcs_total`: a gRPC status by its name, or,
/// for an answer with status OK that carries an LDLM error, that error's name
/// as `ldlm.proto` spells it.
enum RPCOutcomeLabel {
    static let names: [String] = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
        "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
        "Unknown", "LockDoesNotExist", "InvalidLockKey", "LockWaitTimeout", "NotLocked", "LockDoesNotExistOrInvalidKey",
        "LockSizeMismatch", "InvalidLockSize",
    ]
    static let count = names.count
    private static let firstLDLMError = 17

    static func of(_ code: GRPCStatus.Code) -> Int { code.rawValue }

    static func of(_ error: ErrorCode?) -> Int {
        error.map { firstLDLMError + Int($0.rawValue) } ?? of(.ok)
    }
}

/// The credential a refused call lacked, as `ldlm_auth_failures_total` labels it.
enum RPCCredential: Int, CaseIterable {
    /// `--password`, for the lock service.
    case password
    /// `--admin_password` or `--admin_identities`, for the admin service.
    case admin

    var label: String {
        switch self {
        case .password: return "password"
        case .admin: return "admin"
        }
    }
}

/// A limit whose refusals `ldlm_limit_refusals_total` counts, labelled by its flag.
enum ServerLimit: Int, CaseIterable {
    case maxLocks, maxWaiters, maxConnections, maxConnectionsPerIP, maxHeaderListBytes, prefaceTimeout

    var label: String {
        switch self {
        case .maxLocks: return ConfigSetting.maxLocks.name
        case .maxWaiters: return ConfigSetting.maxWaiters.name
        case .maxConnections: return ConfigSetting.maxConnections.name
        case .maxConnectionsPerIP: return ConfigSetting.maxConnectionsPerIP.name
        case .maxHeaderListBytes: return ConfigSetting.maxHeaderListBytes.name
        case .prefaceTimeout: return ConfigSetting.prefaceTimeout.name
        }
    }
}

extension LockFailure {
    /// The server limit this failure went over, if it is a limit's refusal.
    var limit: ServerLimit? {
        switch self {
        case .tooManyLocks: return .maxLocks
        case .tooManyWaiters: return .maxWaiters
        default: return nil
        }
    }
}

/// `ldlm_rpc_duration_seconds` of one method. swift-prometheus' histogram
/// takes a lock and walks every bucket, comparing through a stdlib call and
/// checking its array's uniqueness at each: about 900 instructions per call,
/// 2% of a Lock+Unlock pair on its own. This one lives on the event loop like
/// everything it times, so it needs no lock: a call finds its one bucket
/// (a few comparisons for a fast call) and bumps it; buckets are summed into
/// Prometheus' cumulative form only when scraped.
final class RPCDurationHistogram {
    /// Upper bounds from 50 µs (a TryLock on loopback) to a minute, for a
    /// `Lock` is timed until its grant; spelled as `le` shows them.
    static let bounds: [(nanoseconds: UInt64, label: String)] = [
        (50_000, "0.00005"), (100_000, "0.0001"), (250_000, "0.00025"), (500_000, "0.0005"),
        (1_000_000, "0.001"), (2_500_000, "0.0025"), (5_000_000, "0.005"), (10_000_000, "0.01"),
        (25_000_000, "0.025"), (50_000_000, "0.05"), (100_000_000, "0.1"), (250_000_000, "0.25"),
        (500_000_000, "0.5"), (1_000_000_000, "1"), (2_500_000_000, "2.5"), (5_000_000_000, "5"),
        (10_000_000_000, "10"), (30_000_000_000, "30"), (60_000_000_000, "60"),
    ]
    private static let upperBounds = bounds.map(\.nanoseconds)

    static let header = """
        # HELP ldlm_rpc_duration_seconds Time from a request's arrival to its answer, by method; a Lock's includes its wait
        # TYPE ldlm_rpc_duration_seconds histogram

        """

    /// `service="...",method="..."`, already rendered.
    private let labels: String
    /// Calls per bucket, not cumulative; the last is beyond every bound.
    private var counts = [UInt64](repeating: 0, count: bounds.count + 1)
    private var sumNanoseconds: UInt64 = 0

    init(labels: String) {
        self.labels = labels
    }

    func record(nanoseconds: UInt64) {
        var bucket = 0
        while bucket < Self.upperBounds.count, nanoseconds > Self.upperBounds[bucket] {
            bucket += 1
        }
        counts[bucket] += 1
        sumNanoseconds &+= nanoseconds
    }

    func emit(into text: inout [UInt8]) {
        var cumulative: UInt64 = 0
        for (index, bound) in Self.bounds.enumerated() {
            cumulative += counts[index]
            text += "ldlm_rpc_duration_seconds_bucket{\(labels),le=\"\(bound.label)\"} \(cumulative)\n".utf8
        }
        cumulative += counts[Self.bounds.count]
        text += "ldlm_rpc_duration_seconds_bucket{\(labels),le=\"+Inf\"} \(cumulative)\n".utf8
        text += "ldlm_rpc_duration_seconds_sum{\(labels)} \(Double(sumNanoseconds) / 1e9)\n".utf8
        text += "ldlm_rpc_duration_seconds_count{\(labels)} \(cumulative)\n".utf8
    }
}
