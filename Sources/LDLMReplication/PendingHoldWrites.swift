import DequeModule
import LDLMEtcd

/// The hold changes a primary has made but not yet sent to etcd, at most one
/// write per etcd key (etcd refuses a key twice in one Txn), in the order
/// their keys first changed.
///
/// A hold granted and released again before either was sent leaves nothing
/// to send: it was never in etcd. Taking a batch takes up to
/// ``maxHoldWritesPerTxn`` writes and ``maxBatchBytes`` of keys and values.
public struct PendingHoldWrites {
    /// etcd 3.4 takes 128 operations per Txn; one goes to the fencing token.
    public static let maxHoldWritesPerTxn = 127
    /// etcd refuses requests over 1.5 MiB by default; this leaves room for
    /// one more write of the longest name a replica accepts.
    public static let maxBatchBytes = 1024 * 1024

    public enum Write: Equatable, Sendable {
        /// `isNew`: the grant itself is still unsent, so etcd has never had the key.
        case put(HoldValue, isNew: Bool)
        case delete
    }

    private var order = Deque<[UInt8]>()
    private var writes: [[UInt8]: Write] = [:]

    public init() {}

    public var isEmpty: Bool { writes.isEmpty }
    public var count: Int { writes.count }

    public mutating func granted(_ key: [UInt8], _ value: HoldValue) {
        record(key, .put(value, isNew: true))
    }

    public mutating func leaseChanged(_ key: [UInt8], _ value: HoldValue) {
        if case .put(_, let isNew) = writes[key] {
            writes[key] = .put(value, isNew: isNew)
        } else {
            record(key, .put(value, isNew: false))
        }
    }

    public mutating func released(_ key: [UInt8]) {
        if case .put(_, isNew: true) = writes[key] {
            writes[key] = nil
            // Its place in `order` is skipped when a batch reaches it.
        } else {
            record(key, .delete)
        }
    }

    private mutating func record(_ key: [UInt8], _ write: Write) {
        if writes.updateValue(write, forKey: key) == nil {
            order.append(key)
        }
    }

    /// Removes and returns the oldest writes that fit one Txn.
    public mutating func takeBatch() -> [(key: [UInt8], write: Write)] {
        var batch: [(key: [UInt8], write: Write)] = []
        var bytes = 0
        while batch.count < Self.maxHoldWritesPerTxn, let key = order.first {
            guard let write = writes[key] else {
                order.removeFirst()
                continue
            }
            let size = key.count + (write == .delete ? 0 : 20)
            if !batch.isEmpty, bytes + size > Self.maxBatchBytes { break }
            order.removeFirst()
            writes[key] = nil
            batch.append((key, write))
            bytes += size
        }
        return batch
    }
}

extension ReplicaKeys {
    /// One batch as a Txn that applies only while the primary key is still
    /// the one this primary created (`term`): a primary that lost its key,
    /// however late its request arrives, writes nothing.
    public func guardedTxn(term: Int64, writes: [(key: [UInt8], write: PendingHoldWrites.Write)], fencingHighWater: UInt64?) -> EtcdTxnRequest {
        var operations: [EtcdRequestOp] = writes.map { key, write in
            switch write {
            case .put(let value, _): return .put(EtcdPutRequest(key: key, value: value.encoded))
            case .delete: return .deleteRange(EtcdDeleteRangeRequest(key: key))
            }
        }
        if let fencingHighWater {
            operations.append(.put(EtcdPutRequest(key: fencing, value: Array(String(fencingHighWater).utf8))))
        }
        return EtcdTxnRequest(compare: [EtcdCompare(key: primary, .equal, .createRevision(term))], success: operations)
    }
}
