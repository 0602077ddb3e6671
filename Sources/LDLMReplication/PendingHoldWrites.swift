import DequeModule
import LDLMEtcd

/// The hold changes a primary has made but not yet sent to etcd, at most one
/// write per etcd key (etcd refuses a key twice in one Txn), in the order
/// their keys first changed.
///
/// Each change has a number, counting up; a write remembers the first change
/// it carries, so ``oldestPendingChange`` tells which changes are all in
/// etcd once the batches before it are committed. A hold granted and
/// released again before either was sent leaves nothing to send: it was
/// never in etcd. Taking a batch takes up to ``maxHoldWritesPerTxn`` writes
/// and ``maxBatchBytes`` of keys and values.
public struct PendingHoldWrites {
    /// etcd 3.4 takes 128 operations per Txn; one goes to the fencing token
    /// and one to the primary key's sequence (see ``ReplicaKeys/guardedTxn(term:sequence:advertiseAddress:lease:writes:fencingHighWater:)``).
    public static let maxHoldWritesPerTxn = 126
    /// etcd refuses requests over 1.5 MiB by default; this leaves room for
    /// one more write of the longest name a replica accepts.
    public static let maxBatchBytes = 1024 * 1024

    public enum Write: Equatable, Sendable {
        /// `isNew`: the grant itself is still unsent, so etcd has never had the key.
        case put(HoldValue, isNew: Bool)
        case delete
    }

    private struct Entry {
        var write: Write
        let firstChange: UInt64
    }

    private var order = Deque<[UInt8]>()
    private var entries: [[UInt8]: Entry] = [:]

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    /// The number of the oldest change not yet taken into a batch; nil when every change was.
    public mutating func oldestPendingChange() -> UInt64? {
        while let key = order.first {
            if let entry = entries[key] { return entry.firstChange }
            order.removeFirst()
        }
        return nil
    }

    public mutating func granted(_ key: [UInt8], _ value: HoldValue, change: UInt64) {
        record(key, .put(value, isNew: true), change: change)
    }

    public mutating func leaseChanged(_ key: [UInt8], _ value: HoldValue, change: UInt64) {
        if case .put(_, let isNew) = entries[key]?.write {
            entries[key]!.write = .put(value, isNew: isNew)
        } else {
            record(key, .put(value, isNew: false), change: change)
        }
    }

    public mutating func released(_ key: [UInt8], change: UInt64) {
        if case .put(_, isNew: true) = entries[key]?.write {
            entries[key] = nil
            // Its place in `order` is skipped when a batch reaches it.
        } else {
            record(key, .delete, change: change)
        }
    }

    private mutating func record(_ key: [UInt8], _ write: Write, change: UInt64) {
        if entries[key] != nil {
            entries[key]!.write = write
        } else {
            entries[key] = Entry(write: write, firstChange: change)
            order.append(key)
        }
    }

    /// Removes and returns the oldest writes that fit one Txn.
    public mutating func takeBatch() -> [(key: [UInt8], write: Write)] {
        var batch: [(key: [UInt8], write: Write)] = []
        var bytes = 0
        while batch.count < Self.maxHoldWritesPerTxn, let key = order.first {
            guard let entry = entries[key] else {
                order.removeFirst()
                continue
            }
            let size = key.count + (entry.write == .delete ? 0 : 20)
            if !batch.isEmpty, bytes + size > Self.maxBatchBytes { break }
            order.removeFirst()
            entries[key] = nil
            batch.append((key, entry.write))
            bytes += size
        }
        return batch
    }
}

extension ReplicaKeys {
    /// One batch as a Txn that applies only while the primary key is the one
    /// this primary created (`term`) and was last written by this primary's
    /// previous Txn (`sequence`, its mod revision), and that writes the key
    /// again (same value and lease) to move `sequence` on.
    ///
    /// The term keeps a deposed primary from writing, however late its Txn
    /// arrives; the sequence keeps a copy of an earlier Txn of this very
    /// primary, delayed in a frozen member and proposed after later ones
    /// committed, from applying again. When the compare fails, `failure`
    /// reads the primary key, to tell a deposed primary from one whose
    /// earlier attempt of this same Txn did commit.
    public func guardedTxn(
        term: Int64,
        sequence: Int64,
        advertiseAddress: [UInt8],
        lease: Int64,
        writes: [(key: [UInt8], write: PendingHoldWrites.Write)],
        fencingHighWater: UInt64?
    ) -> EtcdTxnRequest {
        var operations: [EtcdRequestOp] = writes.map { key, write in
            switch write {
            case .put(let value, _): return .put(EtcdPutRequest(key: key, value: value.encoded))
            case .delete: return .deleteRange(EtcdDeleteRangeRequest(key: key))
            }
        }
        if let fencingHighWater {
            operations.append(.put(EtcdPutRequest(key: fencing, value: Array(String(fencingHighWater).utf8))))
        }
        operations.append(.put(EtcdPutRequest(key: primary, value: advertiseAddress, lease: lease)))
        return EtcdTxnRequest(
            compare: [EtcdCompare(key: primary, .equal, .createRevision(term)), EtcdCompare(key: primary, .equal, .modRevision(sequence))],
            success: operations,
            failure: [.range(EtcdRangeRequest(key: primary))]
        )
    }
}
