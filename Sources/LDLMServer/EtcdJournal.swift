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
/// primary key's create revision (``ReplicaKeys/guardedTxn(term:writes:fencingHighWater:)``)
/// and carries the largest fencing token handed out, so a token is in etcd
/// before any grant that carries it is answered.
///
/// Any failure (a refused guard, an error, an answer that may or may not have
/// been applied) ends the journal: the answers waiting for it are never
/// given, and `onFailure` makes the replica step down.
final class EtcdJournal: DurableJournal {
    private let client: EtcdClient
    private let keys: ReplicaKeys
    /// The create revision of this primary's key.
    private let term: Int64
    private let eventLoop: EventLoop
    private let commitTimeout: Duration
    private let onFailure: (String) -> Void
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

    /// `fencingTokenFloor`: the token etcd already holds as the high-water mark.
    init(
        client: EtcdClient,
        keys: ReplicaKeys,
        term: Int64,
        fencingTokenFloor: UInt64,
        eventLoop: EventLoop,
        commitTimeout: Duration,
        onFailure: @escaping (String) -> Void
    ) {
        self.client = client
        self.keys = keys
        self.term = term
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
        pending.granted(keys.hold(name: name, key: grant.key), Self.value(size, grant, leaseDeadline))
        changed()
    }

    func holdReleased(name: String, key: LockKey) {
        pending.released(keys.hold(name: name, key: key))
        changed()
    }

    func leaseChanged(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64) {
        pending.leaseChanged(keys.hold(name: name, key: grant.key), Self.value(size, grant, leaseDeadline))
        changed()
    }

    private static func value(_ size: Int32, _ grant: LockGrant, _ leaseDeadline: UInt64?) -> HoldValue {
        HoldValue(
            size: size,
            fencingToken: grant.fencingToken,
            leaseEndUnixMilliseconds: leaseDeadline.map(StateJournal.unixMilliseconds(atUptime:))
        )
    }

    // MARK: Committing

    private func changed() {
        guard !hasFailed else { return }
        changesMade += 1
        guard !isCommitting, !isCommitScheduled else { return }
        isCommitScheduled = true
        // Later in this loop turn: the rest of this read's calls join the batch.
        eventLoop.execute { self.commitNext() }
    }

    private func commitNext() {
        isCommitScheduled = false
        guard !hasFailed, changesMade > changesCommitted else { return }
        let writes = pending.takeBatch()
        // A batch cut short by etcd's limits commits some changes, but
        // answers wait for all they depend on: they move with the last batch.
        let upTo = pending.isEmpty ? changesMade : changesCommitted
        let highWater = fencingHighWater()
        let request = keys.guardedTxn(
            term: term, writes: writes, fencingHighWater: highWater > fencingTokenCommitted ? highWater : nil
        )
        isCommitting = true
        client.submitTxn(request, timeout: commitTimeout).hop(to: eventLoop).whenComplete { result in
            self.isCommitting = false
            switch result {
            case .success(let response) where response.succeeded:
                self.committed(upTo: upTo, fencingToken: highWater)
            case .success:
                self.fail("etcd refused a write: this replica's primary key is gone (another replica may be primary)")
            case .failure(let error):
                self.fail("etcd write failed: \(error)")
            }
        }
    }

    private func committed(upTo: UInt64, fencingToken: UInt64) {
        guard !hasFailed else { return }
        changesCommitted = max(changesCommitted, upTo)
        fencingTokenCommitted = max(fencingTokenCommitted, fencingToken)
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
