import LDLMCore
import LDLMEtcd
import LDLMReplication
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One replica's part in a replica set over etcd (`--ha_etcd_endpoints`).
///
/// Under an etcd lease of `--ha_lease`, it campaigns for the primary key
/// (``ReplicaKeys/primary``) while none exists, and otherwise follows the
/// primary the key names. On winning it loads the holds etcd keeps, and the
/// ``LockManager`` serves them with an ``EtcdJournal`` that writes every
/// change, guarded by the key's create revision, before it is answered.
///
/// It steps down, and campaigns again under a new lease, when a write fails,
/// when the lease is gone, or when the lease was last confirmed longer ago
/// than ``PrimacyLease`` allows (the watchdog), whichever comes first.
final class Replica: @unchecked Sendable {
    private let config: ServerConfig
    private let manager: LockManager
    private let client: EtcdClient
    private let keys: ReplicaKeys
    private let logger: Logger
    private let leaseTTLSeconds: Int64
    private let pollInterval: Duration
    private let commitTimeout: Duration

    // Touched on the manager's event loop only.
    private var lease: PrimacyLease?
    private var watchdog: Scheduled<Void>?
    private var journal: EtcdJournal?
    private var termEnded: EventLoopPromise<Void>?
    /// The lease this replica campaigns under, to revoke at the end of a drain.
    private let currentLeaseID = NIOLockedValueBox<Int64?>(nil)

    init(config: ServerConfig, manager: LockManager, eventLoopGroup: EventLoopGroup, logger: Logger) throws {
        self.config = config
        self.manager = manager
        self.logger = logger
        keys = ReplicaKeys(cluster: config.haCluster ?? "")
        leaseTTLSeconds = max(2, Int64(config.haLease.components.seconds))
        pollInterval = min(.milliseconds(200), config.haLease / 10)
        // A write etcd has not committed by then is treated as failed: the
        // replica steps down well before its lease could run out under it.
        commitTimeout = config.haLease * 2 / 5
        let endpoints = try config.haEtcdEndpoints.map { text throws(ConfigError) in
            let address = try ListenAddress(parsing: text)
            return EtcdEndpoint(host: address.host, port: address.port)
        }
        let usesTLS = config.haEtcdCAPath != nil || config.haEtcdCertificatePath != nil
        let user = config.haEtcdUser.flatMap { name in config.haEtcdPassword.map { (name: name, password: $0) } }
        let configuration = EtcdClientConfiguration(
            endpoints: endpoints,
            tls: usesTLS ? EtcdTLSFiles(caFile: config.haEtcdCAPath, certificateFile: config.haEtcdCertificatePath, keyFile: config.haEtcdKeyPath) : nil,
            user: user,
            callTimeout: commitTimeout,
            connectTimeout: .seconds(1),
            keepalive: (interval: .seconds(2), timeout: .seconds(2))
        )
        client = try EtcdClient(configuration: configuration, eventLoopGroup: eventLoopGroup)
    }

    private var eventLoop: EventLoop { manager.eventLoop }

    /// Campaigns, serves while primary, and campaigns again after stepping
    /// down, until the task is cancelled.
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await campaignUnderNewLease()
                failures = 0
            } catch is CancellationError {
                break
            } catch {
                failures += 1
                logger.warning("replica: etcd call failed; campaigning again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: min(.milliseconds(100) * failures, .seconds(2)))
            }
        }
        await client.close()
    }

    /// The end of a drain: gives the primary key up at once by revoking the
    /// lease, so a standby takes over without waiting for it to run out.
    func resign() async {
        guard let leaseID = currentLeaseID.withLockedValue({ $0 }) else { return }
        do {
            try await client.leaseRevoke(EtcdLeaseRevokeRequest(id: leaseID), timeout: .seconds(1))
            logger.info("replica: revoked its etcd lease")
        } catch {
            logger.warning("replica: could not revoke its etcd lease; a standby takes over once it runs out", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Campaigning

    private struct LeaseLost: Error {}

    /// One etcd lease's life: keeps it alive and campaigns under it, until it
    /// is lost or this replica steps down, then revokes it.
    private func campaignUnderNewLease() async throws {
        let sentAt = bootClockNanoseconds()
        let grant = try await client.leaseGrant(EtcdLeaseGrantRequest(ttlSeconds: leaseTTLSeconds))
        let leaseID = grant.id
        let granted = PrimacyLease(ttl: .seconds(grant.ttlSeconds), sentAt: sentAt)
        try await eventLoop.submit { self.lease = granted }.get()
        currentLeaseID.withLockedValue { $0 = leaseID }
        defer { currentLeaseID.withLockedValue { $0 = nil } }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.keepAlive(leaseID, every: .seconds(grant.ttlSeconds) / 3) }
                group.addTask { try await self.campaign(leaseID) }
                // Either ends the lease's life: a lost lease, or a term that ended.
                try await group.next()
                group.cancelAll()
            }
        } catch {
            _ = try? await client.leaseRevoke(EtcdLeaseRevokeRequest(id: leaseID), timeout: .seconds(1))
            throw error
        }
        _ = try? await client.leaseRevoke(EtcdLeaseRevokeRequest(id: leaseID), timeout: .seconds(1))
    }

    private func keepAlive(_ leaseID: Int64, every interval: Duration) async throws {
        while true {
            try await Task.sleep(for: interval)
            let sentAt = bootClockNanoseconds()
            do {
                _ = try await client.leaseKeepAliveOnce(EtcdLeaseKeepAliveRequest(id: leaseID))
                eventLoop.execute { self.leaseRenewed(sentAt: sentAt) }
            } catch let error as EtcdError where error.kind == .leaseNotFound {
                eventLoop.execute { self.stepDown(because: "its etcd lease is gone") }
                throw LeaseLost()
            } catch {
                // The watchdog steps down if this goes on for too long.
                logger.warning("replica: etcd lease keepalive failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Follows the primary while there is one, takes the key when there is
    /// none; returns once a term as primary has ended.
    private func campaign(_ leaseID: Int64) async throws {
        while true {
            if try await eventLoop.submit({ self.manager.isDraining }).get() {
                // A draining replica never campaigns; the end of the shutdown cancels this.
                try await Task.sleep(for: .seconds(3600))
            }
            let current = try await client.range(EtcdRangeRequest(key: keys.primary)).kvs.first
            if let current, current.lease != leaseID {
                let primary = String(decoding: current.value, as: UTF8.self)
                eventLoop.execute { self.manager.standbyFollows(primary: primary) }
                try await Task.sleep(for: pollInterval)
                continue
            }
            let term: Int64
            if let current {
                // Our own key: a campaign whose answer was lost did win.
                term = current.createRevision
            } else {
                let response = try await client.txn(EtcdTxnRequest(
                    compare: [EtcdCompare(key: keys.primary, .equal, .createRevision(0))],
                    success: [.put(EtcdPutRequest(key: keys.primary, value: Array(config.haAdvertiseAddress!.utf8), lease: leaseID))]
                ))
                guard response.succeeded else { continue }
                term = response.header.revision
            }
            try await serveAsPrimary(term: term)
            return
        }
    }

    // MARK: Serving

    private func serveAsPrimary(term: Int64) async throws {
        let (holds, fencingTokenFloor) = try await loadHolds()
        let ended = try await eventLoop.submit {
            self.takeOver(term: term, holds: holds, fencingTokenFloor: fencingTokenFloor)
        }.get()
        try await withTaskCancellationHandler {
            try await ended.get()
        } onCancel: {
            // Shutting down: the drain has ended, nothing is served any more.
            self.eventLoop.execute { self.termEnded?.succeed() }
        }
    }

    /// Every hold in etcd and the fencing high-water mark. Nobody else writes
    /// them while this replica owns the primary key.
    private func loadHolds() async throws -> ([LoadedHold], UInt64) {
        var holds: [LoadedHold] = []
        var start = keys.holdsPrefix
        let end = etcdPrefixEnd(keys.holdsPrefix)
        var revision: Int64 = 0
        while true {
            let page = try await client.range(EtcdRangeRequest(key: start, rangeEnd: end, limit: 1000, revision: revision))
            revision = page.header.revision
            for kv in page.kvs {
                guard let (name, key) = keys.parseHold(kv.key), let value = HoldValue(decoding: kv.value) else {
                    logger.error("replica: skipping an etcd key it cannot read under the holds prefix", metadata: [
                        "key": "\(String(decoding: kv.key, as: UTF8.self))",
                    ])
                    continue
                }
                holds.append(LoadedHold(name: name, key: key, value: value))
            }
            guard page.more, let last = page.kvs.last else { break }
            start = last.key + [0]
        }
        let fencing = try await client.range(EtcdRangeRequest(key: keys.fencing)).kvs.first
        let floor = fencing.flatMap { UInt64(String(decoding: $0.value, as: UTF8.self)) } ?? 0
        let highestHeld = holds.map(\.value.fencingToken).max() ?? 0
        return (holds, max(floor, highestHeld))
    }

    /// On the event loop: serves as primary of `term`, if the lease still
    /// allows; the future completes when the term ends.
    private func takeOver(term: Int64, holds: [LoadedHold], fencingTokenFloor: UInt64) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        guard let lease, lease.isValid(at: bootClockNanoseconds()), !manager.isDraining else {
            promise.succeed()
            return promise.futureResult
        }
        let journal = EtcdJournal(
            client: client, keys: keys, term: term, fencingTokenFloor: fencingTokenFloor,
            eventLoop: eventLoop, commitTimeout: commitTimeout
        ) { [unowned self] reason in
            self.stepDown(because: reason)
        }
        termEnded = promise
        self.journal = journal
        do {
            try manager.becomePrimary(
                holds: holds, fencingTokenFloor: fencingTokenFloor, reclaimGrace: config.haReclaimGrace, journal: journal
            )
        } catch {
            logger.critical("replica: cannot load the holds etcd keeps; not serving as primary", metadata: ["error": "\(error.message)"])
            stepDown(because: "loading holds failed")
            return promise.futureResult
        }
        armWatchdog()
        logger.notice("replica: now primary", metadata: [
            "term": "\(term)", "holds_loaded": "\(holds.count)", "fencing_token_floor": "\(fencingTokenFloor)",
            "reclaim_grace": "\(config.haReclaimGrace)",
        ])
        return promise.futureResult
    }

    private func leaseRenewed(sentAt: UInt64) {
        lease?.renewed(sentAt: sentAt)
    }

    /// Checks the lease when it would run out, and again while it is renewed.
    private func armWatchdog() {
        guard let lease else { return }
        let now = bootClockNanoseconds()
        guard lease.isValid(at: now) else {
            return stepDown(because: "its etcd lease was last renewed too long ago")
        }
        watchdog = eventLoop.scheduleTask(in: .nanoseconds(Int64(lease.validUntil - now))) { [unowned self] in
            self.armWatchdog()
        }
    }

    private func stepDown(because reason: String) {
        guard let termEnded else { return }
        self.termEnded = nil
        watchdog?.cancel()
        watchdog = nil
        journal?.abandon()
        journal = nil
        manager.stepDown()
        logger.error("replica: stepped down as primary; closing client connections and campaigning again", metadata: ["reason": "\(reason)"])
        termEnded.succeed()
    }
}
