// Swift views of the etcd v3 messages the HA layer uses (Protos/etcd/rpc.proto
// and kv.proto, package `etcdserverpb` / `mvccpb`). Keys and values are bytes;
// lease IDs and revisions are etcd's int64. Fields the HA layer has no use for
// (sorting, watch filters, ...) are left out: they keep their default.

/// Where in etcd's history an answer was taken.
public struct EtcdResponseHeader: Equatable, Sendable {
    public var clusterID: UInt64
    public var memberID: UInt64
    /// The store's revision when the request was applied.
    public var revision: Int64
    public var raftTerm: UInt64

    public init(clusterID: UInt64 = 0, memberID: UInt64 = 0, revision: Int64 = 0, raftTerm: UInt64 = 0) {
        self.clusterID = clusterID
        self.memberID = memberID
        self.revision = revision
        self.raftTerm = raftTerm
    }
}

public struct EtcdKeyValue: Equatable, Sendable {
    public var key: [UInt8]
    /// The revision of the put that created the key; 0 for a key that does not exist.
    public var createRevision: Int64
    public var modRevision: Int64
    /// Puts since the key was created, 1 for the first.
    public var version: Int64
    public var value: [UInt8]
    /// The lease the key is attached to; 0 for none.
    public var lease: Int64

    public init(key: [UInt8], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0, value: [UInt8] = [], lease: Int64 = 0) {
        self.key = key
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.value = value
        self.lease = lease
    }
}

/// Reads `key`, or the keys in [`key`, `rangeEnd`) when `rangeEnd` is not empty
/// (`[0]` means every key from `key` on).
public struct EtcdRangeRequest: Equatable, Sendable {
    public var key: [UInt8]
    public var rangeEnd: [UInt8]
    /// At most this many keys; 0 for no limit.
    public var limit: Int64
    /// Read at this revision; 0 for the latest.
    public var revision: Int64
    /// Answered by the member itself, without a round through the leader: may be stale.
    public var serializable: Bool
    public var keysOnly: Bool
    public var countOnly: Bool

    public init(key: [UInt8], rangeEnd: [UInt8] = [], limit: Int64 = 0, revision: Int64 = 0, serializable: Bool = false, keysOnly: Bool = false, countOnly: Bool = false) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.limit = limit
        self.revision = revision
        self.serializable = serializable
        self.keysOnly = keysOnly
        self.countOnly = countOnly
    }

    /// Every key that starts with `prefix`.
    public static func prefix(_ prefix: [UInt8]) -> EtcdRangeRequest {
        EtcdRangeRequest(key: prefix, rangeEnd: etcdPrefixEnd(prefix))
    }
}

/// The first key after every key that starts with `prefix`, as etcd's
/// `clientv3.GetPrefixRangeEnd`: the prefix with its last byte below 0xff
/// incremented, or `[0]` (no end) when every byte is 0xff.
public func etcdPrefixEnd(_ prefix: [UInt8]) -> [UInt8] {
    var end = prefix
    while let last = end.last {
        if last < 0xff {
            end[end.count - 1] = last + 1
            return end
        }
        end.removeLast()
    }
    return [0]
}

public struct EtcdRangeResponse: Equatable, Sendable {
    public var header: EtcdResponseHeader
    public var kvs: [EtcdKeyValue]
    /// More keys matched than `limit` let through.
    public var more: Bool
    /// How many keys matched.
    public var count: Int64

    public init(header: EtcdResponseHeader = EtcdResponseHeader(), kvs: [EtcdKeyValue] = [], more: Bool = false, count: Int64 = 0) {
        self.header = header
        self.kvs = kvs
        self.more = more
        self.count = count
    }
}

public struct EtcdPutRequest: Equatable, Sendable {
    public var key: [UInt8]
    public var value: [UInt8]
    /// Attaches the key to this lease (deleted with it); 0 for none.
    public var lease: Int64
    /// Answer with the key's value before this put.
    public var prevKV: Bool

    public init(key: [UInt8], value: [UInt8], lease: Int64 = 0, prevKV: Bool = false) {
        self.key = key
        self.value = value
        self.lease = lease
        self.prevKV = prevKV
    }
}

public struct EtcdPutResponse: Equatable, Sendable {
    public var header: EtcdResponseHeader
    public var prevKV: EtcdKeyValue?

    public init(header: EtcdResponseHeader = EtcdResponseHeader(), prevKV: EtcdKeyValue? = nil) {
        self.header = header
        self.prevKV = prevKV
    }
}

public struct EtcdDeleteRangeRequest: Equatable, Sendable {
    public var key: [UInt8]
    /// As ``EtcdRangeRequest/rangeEnd``.
    public var rangeEnd: [UInt8]
    public var prevKV: Bool

    public init(key: [UInt8], rangeEnd: [UInt8] = [], prevKV: Bool = false) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.prevKV = prevKV
    }
}

public struct EtcdDeleteRangeResponse: Equatable, Sendable {
    public var header: EtcdResponseHeader
    public var deleted: Int64
    public var prevKVs: [EtcdKeyValue]

    public init(header: EtcdResponseHeader = EtcdResponseHeader(), deleted: Int64 = 0, prevKVs: [EtcdKeyValue] = []) {
        self.header = header
        self.deleted = deleted
        self.prevKVs = prevKVs
    }
}

/// One condition of a transaction: `target` of `key` compared by `result` with the value it carries.
public struct EtcdCompare: Equatable, Sendable {
    public enum Result: UInt32, Sendable {
        case equal = 0
        case greater = 1
        case less = 2
        case notEqual = 3
    }

    /// What is compared, with the value it is compared to.
    public enum Target: Equatable, Sendable {
        case version(Int64)
        /// `.createRevision(0)` with `.equal` holds when the key does not exist.
        case createRevision(Int64)
        case modRevision(Int64)
        case value([UInt8])
        case lease(Int64)
    }

    public var key: [UInt8]
    public var result: Result
    public var target: Target
    /// Compares every key in [`key`, `rangeEnd`) when not empty.
    public var rangeEnd: [UInt8]

    public init(key: [UInt8], _ result: Result, _ target: Target, rangeEnd: [UInt8] = []) {
        self.key = key
        self.result = result
        self.target = target
        self.rangeEnd = rangeEnd
    }
}

public indirect enum EtcdRequestOp: Equatable, Sendable {
    case range(EtcdRangeRequest)
    case put(EtcdPutRequest)
    case deleteRange(EtcdDeleteRangeRequest)
    case txn(EtcdTxnRequest)
}

public indirect enum EtcdResponseOp: Equatable, Sendable {
    case range(EtcdRangeResponse)
    case put(EtcdPutResponse)
    case deleteRange(EtcdDeleteRangeResponse)
    case txn(EtcdTxnResponse)
}

/// If every compare holds, runs `success`, else `failure`, as one revision.
/// etcd 3.4 takes at most 128 operations per transaction and no key written twice.
public struct EtcdTxnRequest: Equatable, Sendable {
    public var compare: [EtcdCompare]
    public var success: [EtcdRequestOp]
    public var failure: [EtcdRequestOp]

    public init(compare: [EtcdCompare] = [], success: [EtcdRequestOp] = [], failure: [EtcdRequestOp] = []) {
        self.compare = compare
        self.success = success
        self.failure = failure
    }
}

public struct EtcdTxnResponse: Equatable, Sendable {
    public var header: EtcdResponseHeader
    /// Every compare held: `responses` answer `success`, else `failure`.
    public var succeeded: Bool
    public var responses: [EtcdResponseOp]

    public init(header: EtcdResponseHeader = EtcdResponseHeader(), succeeded: Bool = false, responses: [EtcdResponseOp] = []) {
        self.header = header
        self.succeeded = succeeded
        self.responses = responses
    }
}

public struct EtcdLeaseGrantRequest: Equatable, Sendable {
    public var ttlSeconds: Int64
    /// The lease ID to use; 0 lets etcd choose one.
    public var id: Int64

    public init(ttlSeconds: Int64, id: Int64 = 0) {
        self.ttlSeconds = ttlSeconds
        self.id = id
    }
}

public struct EtcdLeaseGrantResponse: Equatable, Sendable {
    public var header: EtcdResponseHeader
    public var id: Int64
    /// The TTL granted, which etcd may have raised to its minimum.
    public var ttlSeconds: Int64
    public var error: String

    public init(header: EtcdResponseHeader = EtcdResponseHeader(), id: Int64 = 0, ttlSeconds: Int64 = 0, error: String = "") {
        self.header = header
        self.id = id
        self.ttlSeconds = ttlSeconds
        self.error = error
    }
}

public struct EtcdLeaseRevokeRequest: Equatable, Sendable {
    public var id: Int64

    public init(id: Int64) {
        self.id = id
    }
}

public struct EtcdLeaseRevokeResponse: Equatable, Sendable {
    public var header: EtcdResponseHeader

    public init(header: EtcdResponseHeader = EtcdResponseHeader()) {
        self.header = header
    }
}

public struct EtcdLeaseKeepAliveRequest: Equatable, Sendable {
    public var id: Int64

    public init(id: Int64) {
        self.id = id
    }
}

public struct EtcdLeaseKeepAliveResponse: Equatable, Sendable {
    public var header: EtcdResponseHeader
    public var id: Int64
    /// The TTL the lease has again; 0 (or less) when the lease no longer exists.
    public var ttlSeconds: Int64

    public init(header: EtcdResponseHeader = EtcdResponseHeader(), id: Int64 = 0, ttlSeconds: Int64 = 0) {
        self.header = header
        self.id = id
        self.ttlSeconds = ttlSeconds
    }
}

public struct EtcdLeaseTimeToLiveRequest: Equatable, Sendable {
    public var id: Int64
    /// Also list the keys attached to the lease.
    public var keys: Bool

    public init(id: Int64, keys: Bool = false) {
        self.id = id
        self.keys = keys
    }
}

public struct EtcdLeaseTimeToLiveResponse: Equatable, Sendable {
    public var header: EtcdResponseHeader
    public var id: Int64
    /// Seconds left; -1 when the lease has expired or never existed.
    public var ttlSeconds: Int64
    public var grantedTTLSeconds: Int64
    public var keys: [[UInt8]]

    public init(header: EtcdResponseHeader = EtcdResponseHeader(), id: Int64 = 0, ttlSeconds: Int64 = 0, grantedTTLSeconds: Int64 = 0, keys: [[UInt8]] = []) {
        self.header = header
        self.id = id
        self.ttlSeconds = ttlSeconds
        self.grantedTTLSeconds = grantedTTLSeconds
        self.keys = keys
    }
}

public struct EtcdAuthenticateRequest: Equatable, Sendable {
    public var name: String
    public var password: String

    public init(name: String, password: String) {
        self.name = name
        self.password = password
    }
}

public struct EtcdAuthenticateResponse: Equatable, Sendable {
    public var header: EtcdResponseHeader
    /// Sent as `token` metadata on later calls.
    public var token: String

    public init(header: EtcdResponseHeader = EtcdResponseHeader(), token: String = "") {
        self.header = header
        self.token = token
    }
}
