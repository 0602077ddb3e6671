import LDLMCore

/// A hold the state file says was taken and not released.
public struct RecoveredHold: Equatable, Sendable {
    public let name: String
    public let size: Int32
    public let key: LockKey
    public let fencingToken: UInt64
    public var leaseEndUnixMilliseconds: Int64?
}

/// The held locks a state file describes once its records are applied in order.
public struct RecoveredState: Equatable, Sendable {
    /// In the order they were granted.
    public private(set) var holds: [RecoveredHold] = []
    /// Every fencing token handed out is at most this.
    public private(set) var fencingTokenHighWater: UInt64 = 0

    public init(replaying records: [StateRecord]) {
        var live: [HoldID: RecoveredHold] = [:]
        var order: [HoldID] = []
        for record in records {
            switch record {
            case .grant(let name, let size, let key, let token, let leaseEnd):
                let id = HoldID(name: name, key: key)
                if live[id] == nil { order.append(id) }
                live[id] = RecoveredHold(name: name, size: size, key: key, fencingToken: token, leaseEndUnixMilliseconds: leaseEnd)
                fencingTokenHighWater = max(fencingTokenHighWater, token)
            case .release(let name, let key):
                live[HoldID(name: name, key: key)] = nil
            case .lease(let name, let key, let end):
                live[HoldID(name: name, key: key)]?.leaseEndUnixMilliseconds = end
            case .fencingTokenHighWater(let token):
                fencingTokenHighWater = max(fencingTokenHighWater, token)
            }
        }
        var seen = Set<HoldID>()
        holds = order.compactMap { seen.insert($0).inserted ? live[$0] : nil }
    }

    private struct HoldID: Hashable {
        let name: String
        let key: LockKey
    }
}
