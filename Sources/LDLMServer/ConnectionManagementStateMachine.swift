/// Decides when a connection is pinged, when it is dead, when it is idle and
/// when it drains. Pure: time and activity come in as values, decisions go out,
/// and ``ConnectionManagementHandler`` turns them into timers and commands.
struct ConnectionManagementStateMachine {
    struct Configuration {
        /// Time between keepalive PINGs; nil turns keepalive off.
        var keepaliveInterval: UInt64?
        /// A PING unanswered this long means the peer is gone.
        var keepaliveTimeout: UInt64
        /// A connection idle this long is closed; nil keeps it open.
        var idleTimeout: UInt64?
    }

    /// What the connection is doing, sampled at each idle check.
    struct Activity: Equatable {
        var openStreams: Int
        /// Grows with every call; unchanged means no call started in between.
        var lastStreamID: Int32
        /// The connection's session holds a lock or waits for one.
        var sessionBusy: Bool

        var isIdle: Bool { openStreams == 0 && !sessionBusy }
    }

    enum PingDecision: Equatable {
        /// Send a PING and arm its timeout.
        case sendPing
        /// The previous PING is still unanswered; its timeout will decide.
        case none
    }

    let configuration: Configuration
    private(set) var isAwaitingPingAck = false
    private(set) var isDraining = false
    private var idleSince: (time: UInt64, lastStreamID: Int32)?

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// How often the handler should sample activity: a connection is closed
    /// between `idleTimeout` and 1.25 × `idleTimeout` after it went idle.
    var idleCheckInterval: UInt64? { configuration.idleTimeout.map { max($0 / 4, 1) } }

    mutating func keepaliveIntervalElapsed() -> PingDecision {
        guard !isAwaitingPingAck else { return .none }
        isAwaitingPingAck = true
        return .sendPing
    }

    mutating func pingAcknowledged() {
        isAwaitingPingAck = false
    }

    /// True when the peer must be considered gone and the connection closed.
    func pingTimeoutElapsed() -> Bool {
        isAwaitingPingAck
    }

    /// True when the connection has been idle for the idle timeout and should
    /// be closed gracefully. A draining connection is already closing.
    mutating func idleCheck(_ activity: Activity, now: UInt64) -> Bool {
        guard let idleTimeout = configuration.idleTimeout, !isDraining, activity.isIdle else {
            idleSince = nil
            return false
        }
        guard let since = idleSince, since.lastStreamID == activity.lastStreamID else {
            idleSince = (now, activity.lastStreamID)
            return false
        }
        return now - since.time >= idleTimeout
    }

    /// True the first time the server asks this connection to drain.
    mutating func quiesce() -> Bool {
        defer { isDraining = true }
        return !isDraining
    }
}
