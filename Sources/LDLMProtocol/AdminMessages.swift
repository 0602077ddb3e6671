/// Swift views of the messages in `Protos/ldlm_admin.proto` (package
/// `ldlm.admin.v1`), prefixed `Admin` so they never clash with the lock core's
/// types of the same name.

public struct AdminListLocksRequest: Equatable, Sendable {
    public init() {}
}

public struct AdminListLocksResponse: Equatable, Sendable {
    public var locks: [AdminLock]

    public init(locks: [AdminLock]) {
        self.locks = locks
    }
}

public struct AdminLock: Equatable, Sendable {
    public var name: String
    public var size: Int32
    public var holders: [AdminHolder]
    public var waiters: UInt32

    public init(name: String, size: Int32, holders: [AdminHolder], waiters: UInt32) {
        self.name = name
        self.size = size
        self.holders = holders
        self.waiters = waiters
    }
}

public struct AdminHolder: Equatable, Sendable {
    public var keyPrefix: String
    /// 0 when the holder's session ended and the server kept its lock.
    public var sessionID: UInt64
    public var remoteAddress: String
    public var clientIdentity: String
    /// `nil` when the hold has no lease.
    public var leaseRemainingMilliseconds: Int64?
    public var fencingToken: UInt64

    public init(
        keyPrefix: String,
        sessionID: UInt64,
        remoteAddress: String = "",
        clientIdentity: String = "",
        leaseRemainingMilliseconds: Int64? = nil,
        fencingToken: UInt64 = 0
    ) {
        self.keyPrefix = keyPrefix
        self.sessionID = sessionID
        self.remoteAddress = remoteAddress
        self.clientIdentity = clientIdentity
        self.leaseRemainingMilliseconds = leaseRemainingMilliseconds
        self.fencingToken = fencingToken
    }
}

public struct AdminListSessionsRequest: Equatable, Sendable {
    public init() {}
}

public struct AdminListSessionsResponse: Equatable, Sendable {
    public var sessions: [AdminSession]

    public init(sessions: [AdminSession]) {
        self.sessions = sessions
    }
}

public struct AdminSession: Equatable, Sendable {
    public var id: UInt64
    public var remoteAddress: String
    public var clientIdentity: String
    public var locksHeld: UInt32
    public var waitingCalls: UInt32
    public var connectedSinceUnixMilliseconds: Int64

    public init(
        id: UInt64,
        remoteAddress: String,
        clientIdentity: String = "",
        locksHeld: UInt32,
        waitingCalls: UInt32,
        connectedSinceUnixMilliseconds: Int64
    ) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.clientIdentity = clientIdentity
        self.locksHeld = locksHeld
        self.waitingCalls = waitingCalls
        self.connectedSinceUnixMilliseconds = connectedSinceUnixMilliseconds
    }
}

public struct AdminForceUnlockRequest: Equatable, Sendable {
    public var name: String
    /// A holder's key or its start; empty means every holder.
    public var key: String

    public init(name: String, key: String = "") {
        self.name = name
        self.key = key
    }
}

public struct AdminForceUnlockResponse: Equatable, Sendable {
    public var released: UInt32

    public init(released: UInt32) {
        self.released = released
    }
}

public struct AdminEndSessionRequest: Equatable, Sendable {
    public var sessionID: UInt64

    public init(sessionID: UInt64) {
        self.sessionID = sessionID
    }
}

public struct AdminEndSessionResponse: Equatable, Sendable {
    public var releasedLocks: UInt32

    public init(releasedLocks: UInt32) {
        self.releasedLocks = releasedLocks
    }
}
