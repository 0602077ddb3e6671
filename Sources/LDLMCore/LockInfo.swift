/// A snapshot of one live lock, for tests and admin views.
public struct LockInfo: Equatable, Sendable {
    public struct HolderInfo: Equatable, Sendable {
        public let key: LockKey
        public let fencingToken: UInt64
        /// `nil` when its session ended and the server kept the hold.
        public let session: SessionID?
        public let leaseDeadline: UInt64?
    }

    public let name: String
    public let size: Int32
    public let holders: [HolderInfo]
    public let waiterCount: Int
}

extension LockInfo {
    init(_ record: LockRecord) {
        self.init(
            name: record.name,
            size: record.size,
            holders: record.holders.map {
                HolderInfo(key: $0.key, fencingToken: $0.fencingToken, session: $0.session, leaseDeadline: $0.leaseDeadline)
            },
            waiterCount: record.waiterCount
        )
    }
}
