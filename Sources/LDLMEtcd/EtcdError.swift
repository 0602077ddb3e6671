import LDLMGRPC

/// Why an etcd call failed, and whether it may have been applied.
public struct EtcdError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        // etcd answered with an error: the call was not applied.

        /// "requested lease not found", also for a keepalive whose lease is gone.
        case leaseNotFound
        /// "too many operations in txn request": etcd 3.4 takes at most 128.
        case tooManyOperations
        /// "duplicate key given in txn request": a key written twice in one transaction.
        case duplicateKey
        /// "not leader": the member could not hand the request to a leader.
        case notLeader
        /// "no leader": the member has no leader (partitioned, or an election is on).
        /// The client sends `hasleader` metadata, so etcd says this before acting.
        case noLeader
        /// "authentication failed, invalid user ID or password".
        case authenticationFailed
        /// "invalid auth token": the client authenticates again once on its own.
        case invalidAuthToken
        /// "permission denied": the user's roles do not allow the call.
        case permissionDenied
        /// Any other error etcd answered with; ``EtcdError/status`` has its code and message.
        case rejected

        /// No endpoint took the call: it was sent nowhere, or refused unread.
        case unavailable

        /// The call may or may not have been applied: the connection was lost
        /// or the deadline passed after it was sent, or etcd gave up waiting
        /// for the cluster ("request timed out", "leader changed"). Read back
        /// before relying on either outcome. For calls that change nothing it
        /// only means that no answer came.
        case indeterminate
    }

    public let kind: Kind
    /// The gRPC status etcd answered with, or the transport's account of the failure.
    public let status: GRPCStatus
    /// The endpoint (`host:port`) of the last attempt; nil when none could be tried.
    public let endpoint: String?

    public init(_ kind: Kind, status: GRPCStatus, endpoint: String?) {
        self.kind = kind
        self.status = status
        self.endpoint = endpoint
    }

    /// True only for ``Kind/indeterminate``: every other failure left etcd unchanged.
    public var mayHaveBeenApplied: Bool { kind == .indeterminate }

    public var description: String {
        "etcd \(kind)\(endpoint.map { " at \($0)" } ?? ""): \(status)"
    }

    /// Classifies a failed call. `mayHaveBeenProcessed` is the transport's
    /// view (see `GRPCResponse`); etcd's own messages say the rest.
    init(status: GRPCStatus, mayHaveBeenProcessed: Bool, endpoint: String?) {
        self.init(Self.kind(of: status, mayHaveBeenProcessed: mayHaveBeenProcessed), status: status, endpoint: endpoint)
    }

    private static func kind(of status: GRPCStatus, mayHaveBeenProcessed: Bool) -> Kind {
        guard mayHaveBeenProcessed else { return .unavailable }
        // etcd's messages (etcdserver/api/v3rpc/rpctypes/error.go) are stable API:
        // its own Go client matches errors by them.
        switch (status.code, status.message) {
        case (.notFound, "etcdserver: requested lease not found"): return .leaseNotFound
        case (.invalidArgument, "etcdserver: too many operations in txn request"): return .tooManyOperations
        case (.invalidArgument, "etcdserver: duplicate key given in txn request"): return .duplicateKey
        case (.failedPrecondition, "etcdserver: not leader"): return .notLeader
        case (.unavailable, "etcdserver: no leader"): return .noLeader
        case (.invalidArgument, "etcdserver: authentication failed, invalid user ID or password"): return .authenticationFailed
        case (.unauthenticated, "etcdserver: invalid auth token"): return .invalidAuthToken
        case (.permissionDenied, _): return .permissionDenied
        // Unavailable covers a lost connection and etcd's timeouts, which may
        // still commit; the others are an answer that never came or could not be read.
        case (.unavailable, _), (.deadlineExceeded, _), (.cancelled, _), (.unknown, _), (.internal, _): return .indeterminate
        default: return .rejected
        }
    }
}
