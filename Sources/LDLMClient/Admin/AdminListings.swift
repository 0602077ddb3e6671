import LDLMProtocol

extension LDLMAdmin {
    /// A lock as ``LDLMAdmin/listLocks()`` shows it.
    public struct Lock: Equatable, Sendable {
        public var name: String
        public var size: Int
        public var holders: [Holder]
        /// Lock calls queued for it.
        public var waiters: Int
    }

    public struct Holder: Equatable, Sendable {
        /// The key's first 8 characters: enough to name the holder in
        /// ``LDLMAdmin/forceUnlock(name:key:)``, never enough to unlock.
        public var keyPrefix: String
        /// Nil when the holder's session ended and the server kept its lock.
        public var sessionID: UInt64?
        /// "host:port", or "unix:PATH".
        public var remoteAddress: String
        /// The client certificate's names ("CN=... SAN=..."); empty without mTLS.
        public var clientIdentity: String
        /// Nil for a hold without a lease.
        public var leaseRemaining: Duration?
        /// Nil from a server that issues no fencing tokens.
        public var fencingToken: UInt64?
    }

    /// A server session, i.e. one client connection.
    public struct Session: Equatable, Sendable {
        public var id: UInt64
        public var remoteAddress: String
        public var clientIdentity: String
        public var locksHeld: Int
        /// Lock calls of this session waiting for a lock.
        public var waitingCalls: Int
        public var connectedSinceUnixMilliseconds: Int64
    }
}

extension LDLMAdmin.Lock {
    init(_ lock: AdminLock) {
        self.init(name: lock.name, size: Int(lock.size), holders: lock.holders.map(LDLMAdmin.Holder.init), waiters: Int(lock.waiters))
    }
}

extension LDLMAdmin.Holder {
    init(_ holder: AdminHolder) {
        self.init(
            keyPrefix: holder.keyPrefix,
            sessionID: holder.sessionID == 0 ? nil : holder.sessionID,
            remoteAddress: holder.remoteAddress,
            clientIdentity: holder.clientIdentity,
            leaseRemaining: holder.leaseRemainingMilliseconds.map { .milliseconds($0) },
            fencingToken: holder.fencingToken == 0 ? nil : holder.fencingToken
        )
    }
}

extension LDLMAdmin.Session {
    init(_ session: AdminSession) {
        self.init(
            id: session.id,
            remoteAddress: session.remoteAddress,
            clientIdentity: session.clientIdentity,
            locksHeld: Int(session.locksHeld),
            waitingCalls: Int(session.waitingCalls),
            connectedSinceUnixMilliseconds: session.connectedSinceUnixMilliseconds
        )
    }
}
