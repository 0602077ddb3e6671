/// Hands out fencing tokens: one counter for every lock name together, so the
/// tokens of each name strictly increase without any state per name.
///
/// Tokens must also increase across restarts, before the server keeps any
/// state on disk. So the server starts the counter (`init(startingAbove:)`)
/// above the wall clock in microseconds since the Unix epoch, read once at
/// start-up, and counts up by one per grant. A server that handed out at most
/// one token per microsecond on average since it started, counting the time it
/// is down, has stayed below the wall clock, so the next start begins above
/// every token it handed out. At the ~40,000 grants a second the server
/// reaches that holds 25 times over.
///
/// It fails if the wall clock goes back between two runs by more than the
/// margin the earlier run left (an NTP step, a wrong clock at boot): tokens
/// could then repeat. Persisting the last token and starting above
/// `max(persisted, wall clock)` closes that gap, which is why the start value
/// is given rather than read here.
public struct FencingTokenSource: Sendable {
    private var lastToken: UInt64

    /// The first token is `floor + 1`.
    public init(startingAbove floor: UInt64) {
        lastToken = floor
    }

    /// The last token handed out (or the floor, before the first).
    public var highWater: UInt64 { lastToken }

    /// Later tokens are above `floor` too: a new primary continues above the
    /// tokens its predecessor handed out.
    mutating func raise(above floor: UInt64) {
        lastToken = max(lastToken, floor)
    }

    mutating func next() -> UInt64 {
        lastToken += 1
        return lastToken
    }
}

/// A slot just taken: the secret that releases it and its fencing token.
public struct LockGrant: Hashable, Sendable {
    public let key: LockKey
    /// Larger than the token of every earlier acquisition of the same name.
    public let fencingToken: UInt64

    public init(key: LockKey, fencingToken: UInt64) {
        self.key = key
        self.fencingToken = fencingToken
    }
}
