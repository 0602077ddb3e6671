/// A held lock. The client renews its lease until ``LDLMClient/unlock(_:)``;
/// ``waitUntilLost()`` tells when the hold ends for any other reason.
public final class LockHandle: Sendable {
    public let name: String
    public let key: String
    public let size: Int32
    /// The server's fencing token for this hold: larger than any earlier
    /// hold of this name got. Nil from a server that sends none (go-ldlm).
    public let fencingToken: UInt64?
    let keeper: LeaseKeeper

    init(name: String, key: String, size: Int32, fencingToken: UInt64?, keeper: LeaseKeeper) {
        self.name = name
        self.key = key
        self.size = size
        self.fencingToken = fencingToken
        self.keeper = keeper
    }

    /// Why the hold ended; nil while it is held.
    public var lostReason: LostReason? { keeper.signal.reason }

    /// Returns as soon as the hold ends: at once when it already has. Throws
    /// `CancellationError` when the waiting task is cancelled.
    public func waitUntilLost() async throws -> LostReason {
        try await keeper.signal.wait()
    }
}

/// Why a hold ended.
public enum LostReason: Error, Equatable, Sendable {
    /// Not lost: released by ``LDLMClient/unlock(_:)``. Reported so that no
    /// task waits for a loss that can no longer come.
    case released
    /// The server refused a renew, e.g. the lease had already run out there,
    /// or refused to give the hold back after a drop (it was released).
    case renewFailed(LDLMClientError)
    /// No renew succeeded in time: the server may already have given the lock
    /// to someone else.
    case leaseExpired
    /// The connection, and with it the server session holding the lock,
    /// ended; on a shard with replicas, also no reclaim succeeded within
    /// ``LDLMClient/Configuration/reclaimGrace``.
    case connectionLost(String)
}

extension LostReason: CustomStringConvertible {
    public var description: String {
        switch self {
        case .released: return "released"
        case .renewFailed(let error): return "renew failed: \(error)"
        case .leaseExpired: return "lease expired before a renew got through"
        case .connectionLost(let reason): return "connection lost: \(reason)"
        }
    }
}
