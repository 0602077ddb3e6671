import DequeModule
import LDLMCore
import LDLMEtcd
import LDLMReplication
import Logging
import NIOCore

/// A primary's record of its holds in etcd: every change is written before
/// the answer that tells of it goes out.
///
/// Group commit, as ``StateJournal`` does with the disk: one Txn at a time is
/// in flight and the next takes every change made meanwhile (up to etcd's
/// limits, see ``PendingHoldWrites``), so the more calls arrive while etcd
/// commits, the more share the next commit. Each Txn is guarded by the
/// primary key's create revision (the term) and mod revision (the sequence
/// of this primary's Txns), see ``ReplicaKeys/guardedTxn(term:sequence:advertiseAddress:lease:writes:fencingHighWater:)``,
/// and carries the largest fencing token handed out, so a token is in etcd
/// before any grant that carries it is answered.
///
/// A Txn that failed in a way that may pass (the member it went to died,
/// etcd is electing a leader, an answer was lost) is sent again, to whichever
/// member answers, until it is committed or `retryLimit` has passed. The
/// sequence guard lets at most one copy apply: a resend that finds the
/// sequence moved on while the term is still ours knows an earlier copy
/// committed. Clients see a pause.
/// Any other failure, above all a refused guard, ends the journal: the
/// answers waiting for it are never given, and `onFailure` makes the replica
/// step down.
final class EtcdJournal: DurableJournal {
    private let client: EtcdClient
    private let keys: ReplicaKeys
    /// The create revision of this primary's key.
    private let term: Int64
    /// The primary key's mod revision: moved on by every committed Txn.
    private var sequence: Int64
    private let advertiseAddress: [UInt8]
    private let lease: Int64
    private let retryLimit: Duration
    private let eventLoop: EventLoop
    private let commitTimeout: Duration
    private let onFailure: (String) -> Void
    /// Times each commit and counts its writes, when metrics are served.
    var metrics: ServerMetrics?
    /// The table's largest fencing token, read as each Txn is built.
    private var fencingHighWater: () -> UInt64 = { 0 }

    private var pending = PendingHoldWrites()
    private var changesMade: UInt64 = 0
    private var changesCommitted: UInt64 = 0
    private var fencingTokenCommitted: UInt64
    private var isCommitting = false
    private var isCommitScheduled = false
    private var hasFailed = false
    private var waiting = Deque<(upTo: UInt64, body: () -> Void)>()
    private var closed: [EventLoopPromise<Void>] = []

    /// `term` and `sequence`: the primary key's create and mod revisions;
    /// `advertiseAddress` and `lease`: its value and lease.
    /// `fencingTokenFloor`: the token etcd already holds as the high-water mark.
    init(
        client: EtcdClient,
        keys: ReplicaKeys,
        term: Int64,
        sequence: Int64,
        advertiseAddress: String,
        lease: Int64,
        retryLimit: Duration,
        fencingTokenFloor: UInt64,
        eventLoop: EventLoop,
        commitTimeout: Duration,
        onFailure: @escaping (String) -> Void
    ) {
        self.client = client
        self.keys = keys
        self.term = term
        self.sequence = sequence
        self.advertiseAddress = Array(advertiseAddress.utf8)
        self.lease = lease
        self.retryLimit = retryLimit
        self.fencingTokenCommitted = fencingTokenFloor
        self.eventLoop = eventLoop
        self.commitTimeout = commitTimeout
        self.onFailure = onFailure
    }

    func attached(to table: LockTable) {
        fencingHighWater = { [unowned table] in table.fencingTokenHighWater }
    }

    var hasUnsyncedChanges: Bool { changesMade != changesCommitted }

    func afterSync(_ body: @escaping () -> Void) {
        guard !hasFailed else { return }
        if changesMade == changesCommitted {
            body()
        } else {
            waiting.append((changesMade, body))
        }
    }

    func close() -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        if hasFailed || changesMade == changesCommitted {
            promise.succeed()
        } else {
            closed.append(promise)
        }
        return promise.futureResult
    }

    /// Drops what is not yet committed, without answering anyone: the
    /// replica is stepping down for another reason.
    func abandon() {
        guard !hasFailed else { return }
        hasFailed = true
        pending = PendingHoldWrites()
        waiting.removeAll()
        for promise in closed { promise.succeed() }
        closed.removeAll()
    }

    // MARK: LockTableJournal

    func holdGranted(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64?) {
        guard let change = nextChange() else { return }
        pending.granted(keys.hold(name: name, key: grant.key), Self.value(size, grant, leaseDeadline), change: change)
    }

    func holdReleased(name: String, key: LockKey) {
        guard let change = nextChange() else { return }
        pending.released(keys.hold(name: name, key: key), change: change)
    }

    func leaseChanged(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64) {
        guard let change = nextChange() else { return }
        pending.leaseChanged(keys.hold(name: name, key: grant.key), Self.value(size, grant, leaseDeadline), change: change)
    }

    private static func value(_ size: Int32, _ grant: LockGrant, _ leaseDeadline: UInt64?) -> HoldValue {
        HoldValue(
            size: size,
            fencingToken: grant.fencingToken,
            leaseEndUnixMilliseconds: leaseDeadline.map(StateJournal.unixMilliseconds(atUptime:))
        )
    }

    // MARK: Committing

    /// Numbers the next change and has it committed soon; nil once the journal failed.
    private func nextChange() -> UInt64? {
        guard !hasFailed else { return nil }
        changesMade += 1
        if !isCommitting, !isCommitScheduled {
            isCommitScheduled = true
            // Later in this loop turn: the rest of this read's calls join the batch.
            eventLoop.execute { self.commitNext() }
        }
        return changesMade
    }

    /// One Txn on its way: what it is, and what its commit settles.
    private struct Batch {
        let request: EtcdTxnRequest
        /// Every change up to this one is in etcd once the Txn is.
        let upTo: UInt64
        let fencingToken: UInt64
        let writes: Int
        let firstSentAt: NIODeadline
        var attempts = 1
    }

    private func commitNext() {
        isCommitScheduled = false
        guard !hasFailed, changesMade > changesCommitted else { return }
        let writes = pending.takeBatch()
        // A batch cut short by etcd's limits settles the changes before the
        // oldest one still pending; the rest wait for the next.
        let upTo = pending.oldestPendingChange().map { $0 - 1 } ?? changesMade
        let highWater = fencingHighWater()
        let request = keys.guardedTxn(
            term: term, sequence: sequence, advertiseAddress: advertiseAddress, lease: lease,
            writes: writes, fencingHighWater: highWater > fencingTokenCommitted ? highWater : nil
        )
        isCommitting = true
        send(Batch(request: request, upTo: upTo, fencingToken: highWater, writes: writes.count, firstSentAt: .now()))
    }

    private func send(_ batch: Batch) {
        client.submitTxn(batch.request, timeout: commitTimeout).hop(to: eventLoop).whenComplete { result in
            guard !self.hasFailed else { return }
            switch result {
            case .success(let response) where response.succeeded:
                self.committed(batch, sequence: response.header.revision)
            case .success(let response):
                // The compare failed: deposed, or an earlier copy of this Txn committed.
                guard case .range(let range) = response.responses.first, let key = range.kvs.first, key.createRevision == self.term,
                      batch.attempts > 1
                else {
                    return self.fail("etcd refused a write: this replica's primary key is gone (another replica may be primary)")
                }
                self.committed(batch, sequence: key.modRevision)
            case .failure(let error as EtcdError) where Self.mayPass(error):
                guard NIODeadline.now() - batch.firstSentAt < TimeAmount(self.retryLimit) else {
                    return self.fail("etcd did not commit a write within \(self.retryLimit): \(error)")
                }
                var again = batch
                again.attempts += 1
                self.eventLoop.scheduleTask(in: Self.retryDelay) {
                    guard !self.hasFailed else { return }
                    self.send(again)
                }
            case .failure(let error):
                self.fail("etcd write failed: \(error)")
            }
        }
    }

    private static let retryDelay = TimeAmount.milliseconds(50)

    private static func mayPass(_ error: EtcdError) -> Bool {
        switch error.kind {
        case .indeterminate, .unavailable, .noLeader, .notLeader: return true
        default: return false
        }
    }

    private func committed(_ batch: Batch, sequence: Int64) {
        isCommitting = false
        self.sequence = sequence
        metrics?.etcdCommitted(writes: batch.writes, nanoseconds: UInt64((NIODeadline.now() - batch.firstSentAt).nanoseconds))
        changesCommitted = max(changesCommitted, batch.upTo)
        fencingTokenCommitted = max(fencingTokenCommitted, batch.fencingToken)
        while let first = waiting.first, first.upTo <= changesCommitted {
            waiting.removeFirst().body()
        }
        if changesMade > changesCommitted {
            commitNext()
        } else {
            for promise in closed { promise.succeed() }
            closed.removeAll()
        }
    }

    private func fail(_ reason: String) {
        guard !hasFailed else { return }
        abandon()
        onFailure(reason)
    }
}
