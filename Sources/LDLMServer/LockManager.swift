import LDLMCore
import LDLMReplication
import LDLMStateLog
import NIOCore

/// The one owner of lock state: the ``LockTable``, the timer that expires its
/// leases and waits, and the sessions.
///
/// Connections reach it only through these calls, each synchronous, on
/// ``eventLoop``, with values in and values out. Connections that run on
/// another loop hop to this one first; nothing else touches the table.
final class LockManager {
    let eventLoop: EventLoop
    private let table: LockTable
    private let clock: LockClock
    private let wallClock: () -> Int64
    private let clearOnDisconnect: Bool
    private var peers: [SessionID: SessionPeer] = [:]
    private var expiryTimer: (deadline: UInt64, task: Scheduled<Void>)?
    /// Set once the server drains: nothing queues any more.
    private(set) var isDraining = false
    private var drainObservers: [() -> Void] = []
    private var roleObservers: [() -> Void] = []
    /// A lone server is always primary; a replica only while etcd says so.
    private(set) var role = ReplicaRole.primary
    private(set) var stepDownCount: UInt64 = 0
    /// Makes every change durable before it is acknowledged: the state file,
    /// a primary's etcd, or nothing.
    private(set) var journal: DurableJournal?
    /// Counts what the manager's callers refuse over a limit, when metrics are served.
    var metrics: ServerMetrics?
    /// Holds released because their session ended, since the start.
    private(set) var locksReleasedOnDisconnect: UInt64 = 0

    /// `wallClock` gives Unix time in milliseconds, for when sessions opened.
    init(
        eventLoop: EventLoop,
        clock: LockClock,
        fencingTokens: FencingTokenSource,
        maxNameBytes: Int,
        maxLocks: Int = LockTable.defaultMaxLocks,
        maxWaiters: Int = LockTable.defaultMaxWaiters,
        clearOnDisconnect: Bool,
        journal: DurableJournal? = nil,
        grantsBeyondSize: Bool = false,
        wallClock: @escaping () -> Int64 = unixMillisecondsNow
    ) {
        self.eventLoop = eventLoop
        self.table = LockTable(
            clock: clock,
            fencingTokens: fencingTokens,
            maxNameBytes: maxNameBytes,
            maxLocks: maxLocks,
            maxWaiters: maxWaiters
        )
        table.grantsBeyondSize = grantsBeyondSize
        self.clock = clock
        self.wallClock = wallClock
        self.clearOnDisconnect = clearOnDisconnect
        self.journal = journal
    }

    // MARK: Durability

    /// Puts back the holds a state file kept, each leased for `defaultLease`
    /// or what its own lease has left, whichever is longer, and owned by no
    /// session until its key renews it; then starts recording changes.
    func restore(_ state: RecoveredState, defaultLease: Duration) throws(LockFailure) {
        let now = clock.nanosecondsNow
        let wallNow = wallClock()
        let defaultNanoseconds = UInt64(defaultLease.components.seconds) * 1_000_000_000
            + UInt64(defaultLease.components.attoseconds / 1_000_000_000)
        for hold in state.holds {
            let remaining = hold.leaseEndUnixMilliseconds.map { max(0, $0 - wallNow) } ?? 0
            let lease = max(defaultNanoseconds, UInt64(remaining) * 1_000_000)
            try table.restoreHold(
                name: hold.name,
                size: hold.size,
                grant: LockGrant(key: hold.key, fencingToken: hold.fencingToken),
                leaseDeadline: now + lease
            )
        }
        table.journal = journal
        journal?.attached(to: table)
        rescheduleExpiry()
    }

    // MARK: Replication

    /// Whether the server answers lock calls and tells probes it is ready.
    var isServing: Bool { !isDraining && role == .primary }

    /// A replica starts as a standby, before any listener is bound.
    func startAsStandby() {
        role = .standby(primary: nil)
    }

    /// The standby learned who is primary now.
    func standbyFollows(primary: String?) {
        guard case .standby(let known) = role, known != primary else { return }
        role = .standby(primary: primary)
    }

    /// This replica won the primary key: loads what the previous primary
    /// held, each hold owned by no session and kept for its holder to
    /// reclaim by renewing it (or to unlock it) for `reclaimGrace`, or until
    /// its own lease ends if that is sooner, as it would have on the previous
    /// primary; fencing tokens go on above `fencingTokenFloor`. Then serves,
    /// with every change made durable in `journal` first.
    func becomePrimary(holds: [LoadedHold], fencingTokenFloor: UInt64, reclaimGrace: Duration, journal: DurableJournal) throws(LockFailure) {
        let now = clock.nanosecondsNow
        let wallNow = wallClock()
        let graceDeadline = now + UInt64(TimeAmount(reclaimGrace).nanoseconds)
        table.raiseFencingTokens(above: fencingTokenFloor)
        do {
            for hold in holds {
                let leaseDeadline = hold.value.leaseEndUnixMilliseconds.map { end in
                    min(graceDeadline, now + UInt64(max(0, end - wallNow)) * 1_000_000)
                } ?? graceDeadline
                try table.restoreHold(
                    name: hold.name,
                    size: hold.value.size,
                    grant: LockGrant(key: hold.key, fencingToken: hold.value.fencingToken),
                    leaseDeadline: leaseDeadline
                )
            }
        } catch {
            // Nothing is recorded yet, and no session holds or waits on a standby.
            releaseAllHolds()
            throw error
        }
        self.journal = journal
        table.journal = journal
        journal.attached(to: table)
        role = .primary
        rescheduleExpiry()
        for observer in roleObservers { observer() }
    }

    /// Stops serving as primary: every session ends and every hold goes
    /// without a word to the journal, which is detached first (the holds stay
    /// in etcd for the next primary to load), and every connection closes.
    func stepDown() {
        guard role == .primary else { return }
        role = .standby(primary: nil)
        stepDownCount += 1
        table.journal = nil
        journal = nil
        let ended = peers
        peers.removeAll()
        // Waiters first, answered UNAVAILABLE: a lock freed below must not be
        // granted to one, since nothing would record that grant.
        table.withdrawAllWaiters()
        for session in table.openSessions {
            table.closeSession(session, releasingLocks: true)
        }
        releaseAllHolds()
        for peer in ended.values {
            eventLoop.execute(peer.close)
        }
        for observer in roleObservers { observer() }
    }

    /// Releases every hold left, with no journal attached: etcd keeps them.
    private func releaseAllHolds() {
        for lock in table.allLocks {
            _ = try? table.forceUnlock(name: lock.name)
        }
    }

    /// Runs `body` each time the replica becomes primary or stops being it.
    func onRoleChange(_ body: @escaping () -> Void) {
        roleObservers.append(body)
    }

    /// Runs `body` once every change made so far is on disk; at once without
    /// a state file.
    func afterSync(_ body: @escaping () -> Void) {
        guard let journal else { return body() }
        journal.afterSync(body)
    }

    // MARK: Sessions

    /// Opens the session of a new connection; `close` closes that connection
    /// when an administrator ends the session.
    func openSession(for connection: ConnectionContext, close: @escaping () -> Void) -> SessionID {
        let session = table.openSession()
        peers[session] = SessionPeer(connection: connection, connectedSinceUnixMilliseconds: wallClock(), close: close)
        return session
    }

    /// Ends a session: its waiting calls are withdrawn, and its locks released
    /// unless the server keeps them on disconnect.
    func closeSession(_ session: SessionID) -> SessionEnd {
        peers.removeValue(forKey: session)
        let held = table.heldLockCount(session: session)
        // A drain with a state file is a restart, not a disconnect: the holds
        // stay on record for the next run.
        let releasing = clearOnDisconnect && !(isDraining && journal != nil) && role == .primary
        table.closeSession(session, releasingLocks: releasing)
        rescheduleExpiry()
        if releasing { locksReleasedOnDisconnect += UInt64(held) }
        return releasing ? .released(locks: held) : .kept(locks: held)
    }

    /// Whether the session holds a lock or waits for one.
    func isBusy(_ session: SessionID) -> Bool {
        table.heldLockCount(session: session) > 0 || table.waitingCallCount(session: session) > 0
    }

    var lockCount: Int { table.lockCount }
    var sessionCount: Int { table.sessionCount }
    var holderCount: Int { table.holderCount }
    var waiterCount: Int { table.waiterCount }
    var leaseExpiryCount: UInt64 { table.leaseExpiryCount }

    // MARK: Locks

    /// Takes the lock or queues for it; a queued call is answered through the
    /// handler `makeOutcomeHandler` makes, unless withdrawn by ``cancelWait(_:)``.
    func lock(
        _ request: LockArguments,
        session: SessionID,
        makeOutcomeHandler: () -> (WaitOutcome) -> Void
    ) throws(LockFailure) -> LockAttempt {
        defer { rescheduleExpiry() }
        return try table.lock(
            name: request.name,
            size: request.size,
            leaseSeconds: request.leaseSeconds,
            waitTimeoutSeconds: request.waitTimeoutSeconds,
            session: session,
            makeOutcomeHandler: makeOutcomeHandler
        )
    }

    func tryLock(_ request: LockArguments, session: SessionID) throws(LockFailure) -> LockGrant? {
        defer { rescheduleExpiry() }
        return try table.tryLock(name: request.name, size: request.size, leaseSeconds: request.leaseSeconds, session: session)
    }

    /// Withdraws a queued call; false if it was already answered.
    func cancelWait(_ ticket: WaitTicket) -> Bool {
        table.cancelWait(ticket)
    }

    /// Releases a hold; the waiters it lets in may bring new lease deadlines.
    func unlock(name: String, key: String) throws(LockFailure) {
        defer { rescheduleExpiry() }
        try table.unlock(name: name, key: key)
    }

    /// Returns the hold's fencing token. A hold no session owns joins `session`.
    func renew(name: String, key: String, leaseSeconds: Int32, session: SessionID) throws(LockFailure) -> UInt64 {
        defer { rescheduleExpiry() }
        return try table.renew(name: name, key: key, leaseSeconds: leaseSeconds, session: session)
    }

    /// The server stops serving: every queued call is withdrawn and answered
    /// at once, and from now on a `Lock` that cannot be granted at once does
    /// not queue. Held locks stay until their connections close.
    func beginDrain() {
        guard !isDraining else { return }
        isDraining = true
        table.withdrawAllWaiters()
        for observer in drainObservers { observer() }
    }

    /// Runs `body` when the drain begins, before any connection is told to
    /// drain, so what it sends reaches clients ahead of their GOAWAY.
    func onDrain(_ body: @escaping () -> Void) {
        drainObservers.append(body)
    }

    // MARK: Administration

    /// Every live lock; lease deadlines are on ``nanosecondsNow``'s clock.
    var locks: [LockInfo] { table.allLocks }
    var nanosecondsNow: UInt64 { clock.nanosecondsNow }

    func lockInfo(name: String) -> LockInfo? {
        table.lockInfo(name: name)
    }

    func peer(of session: SessionID) -> SessionPeer? {
        peers[session]
    }

    /// Every open session, by id.
    var sessions: [SessionSummary] {
        peers.sorted { $0.key.rawValue < $1.key.rawValue }.map { id, peer in
            SessionSummary(
                id: id,
                peer: peer,
                locksHeld: table.heldLockCount(session: id),
                waitingCalls: table.waitingCallCount(session: id)
            )
        }
    }

    /// Releases every holder of `name`; the waiters it lets in may bring new lease deadlines.
    func forceUnlock(name: String) throws(LockFailure) -> Int {
        defer { rescheduleExpiry() }
        return try table.forceUnlock(name: name)
    }

    /// Ends a session as its disconnect would, but always releasing its locks,
    /// and closes its connection; `nil` if no such session is open. Returns
    /// how many locks it held.
    func endSession(_ session: SessionID) -> Int? {
        guard let peer = peers.removeValue(forKey: session) else { return nil }
        let held = table.heldLockCount(session: session)
        table.closeSession(session, releasingLocks: true)
        rescheduleExpiry()
        // Later, not now: the call asking for this may be running inside that
        // very connection's read, which closing would pull out from under it.
        eventLoop.execute(peer.close)
        return held
    }

    // MARK: Expiry

    /// Keeps one timer armed for the table's next lease expiry or wait timeout.
    /// Only calls that can add a deadline come here; a timer that fires for a
    /// deadline that went away meanwhile finds nothing due and re-arms.
    private func rescheduleExpiry() {
        guard let next = table.nextDeadline else { return }
        if let expiryTimer {
            guard next < expiryTimer.deadline else { return }
            expiryTimer.task.cancel()
        }
        // A strong capture: the manager lives as long as the server, and a weak
        // one would move its reference count to a side table, slowing the
        // retain every grant's undo closure makes of it.
        let task = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(next)) { () -> Void in
            self.expiryTimer = nil
            self.table.expireDue()
            self.rescheduleExpiry()
        }
        expiryTimer = (next, task)
    }
}

/// What a `Lock` or `TryLock` asks for.
struct LockArguments {
    var name: String
    var size: Int32 = 1
    var leaseSeconds: Int32 = 0
    var waitTimeoutSeconds: Int32 = 0
}

/// A replica's part in its set.
enum ReplicaRole: Equatable {
    case primary
    /// `primary`: the advertise address of the replica that is, if known.
    case standby(primary: String?)
}

/// What became of a session's locks when it ended.
enum SessionEnd: Equatable {
    case released(locks: Int)
    case kept(locks: Int)
}

/// The monotonic clock NIO schedules with, so table deadlines and timers agree.
final class EventLoopClock: LockClock {
    var nanosecondsNow: UInt64 { NIODeadline.now().uptimeNanoseconds }
}
