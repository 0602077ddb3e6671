/// All locks of one server: named locks with a size, FIFO waiters, leases and
/// the sessions that own holders and waiters.
///
/// Not thread-safe and never blocks: the owner calls it from one thread (the
/// server's event loop) and calls ``expireDue()`` when ``nextDeadline`` passes.
/// Outcome handlers of queued calls run synchronously, after the table's state
/// is consistent, so a handler may call back into the table. Only a call that
/// queues gets a handler, so one answered at once costs its caller no closure.
/// Every slot taken, at once or by a waiter, gets the next fencing token.
public final class LockTable {
    public static let defaultMaxNameBytes = 4096
    public static let defaultMaxLocks = 1_000_000
    public static let defaultMaxWaiters = 10_000

    public let maxNameBytes: Int
    /// Live locks the table may hold; a call that would create one more is refused.
    public let maxLocks: Int
    /// Queued `Lock` calls one lock may have; a call that would queue one more is refused.
    public let maxWaiters: Int
    private let clock: LockClock
    private let keyGenerator = LockKeyGenerator()
    @exclusivity(unchecked)
    private var fencingTokens: FencingTokenSource
    @exclusivity(unchecked)
    private var locks = LockIndex()
    @exclusivity(unchecked)
    private var sessions: [SessionID: SessionRecord] = [:]
    @exclusivity(unchecked)
    private var queuedWaiters: [UInt64: WaiterRecord] = [:]
    @exclusivity(unchecked)
    private var leaseDeadlines = DeadlineQueue<LockRecord>()
    @exclusivity(unchecked)
    private var waitDeadlines = DeadlineQueue<WaiterRecord>()
    @exclusivity(unchecked)
    private var lastSessionID: UInt64 = 0
    @exclusivity(unchecked)
    private var lastTicket: UInt64 = 0
    /// Holds of every lock together; kept as they change, so a metrics scrape
    /// reads it without walking the locks.
    @exclusivity(unchecked)
    public private(set) var holderCount = 0
    /// Holds released because their lease ran out, since the table was made.
    @exclusivity(unchecked)
    public private(set) var leaseExpiryCount: UInt64 = 0
    /// Told of every hold taken, released or re-leased, before any caller is.
    @exclusivity(unchecked)
    public var journal: LockTableJournal?
    /// A deliberate fault for testing checkers (`--debug_fault skip_size_check`):
    /// a full lock still grants when nobody is queued. Read only once a lock is
    /// full, so the normal path never pays for it.
    public var grantsBeyondSize = false

    public init(
        clock: LockClock,
        fencingTokens: FencingTokenSource,
        maxNameBytes: Int = LockTable.defaultMaxNameBytes,
        maxLocks: Int = LockTable.defaultMaxLocks,
        maxWaiters: Int = LockTable.defaultMaxWaiters
    ) {
        self.clock = clock
        self.fencingTokens = fencingTokens
        self.maxNameBytes = maxNameBytes
        self.maxLocks = maxLocks
        self.maxWaiters = maxWaiters
    }

    // MARK: Sessions

    public func openSession() -> SessionID {
        lastSessionID += 1
        let id = SessionID(rawValue: lastSessionID)
        sessions[id] = SessionRecord(id: id)
        return id
    }

    /// Ends a session: its queued calls are withdrawn without calling their
    /// handlers, and its holds are released unless `releasingLocks` is false, in
    /// which case they stay until unlocked by key or their lease runs out.
    public func closeSession(_ id: SessionID, releasingLocks: Bool) {
        guard let session = sessions.removeValue(forKey: id) else { return }
        for waiter in session.waiters.values {
            let record = waiter.record
            withdraw(waiter)
            _ = waiter.takeOutcomeHandler()
            if let record { removeIfIdle(record) }
        }
        var grants: [(WaiterRecord, LockGrant)] = []
        for (slot, record) in zip(Int32(0)..., session.holdings) {
            let index = record.holderIndex(session: id, slot: slot)!
            if releasingLocks {
                let holder = record.removeHolder(at: index)
                holderCount -= 1
                journal?.holdReleased(name: record.name, key: holder.key)
                grantFreeSlots(of: record, into: &grants)
                removeIfIdle(record)
            } else {
                record[holder: index].session = nil
            }
        }
        deliver(grants)
    }

    public var sessionCount: Int { sessions.count }
    public var openSessions: [SessionID] { Array(sessions.keys) }

    /// `Lock` calls queued on every lock together.
    public var waiterCount: Int { queuedWaiters.count }

    // MARK: Acquiring

    /// Takes a slot if one is free and nobody is queued; `nil` when the lock is full.
    /// A new name beyond ``maxLocks`` (here and in ``lock``) is refused with
    /// ``LockFailure/tooManyLocks(name:limit:)``; existing locks stay usable.
    public func tryLock(
        name: String,
        size: Int32 = 1,
        leaseSeconds: Int32 = 0,
        session: SessionID
    ) throws(LockFailure) -> LockGrant? {
        let sessionRecord = try validatedSession(session)
        try validate(name: name, size: size)
        try validate(seconds: leaseSeconds, field: "lock_timeout_seconds")
        let record = try record(named: name, size: size)
        guard record.hasFreeSlot || grantsBeyondSize, record.firstWaiter == nil else { return nil }
        return addHolder(to: record, session: session, sessionRecord: sessionRecord, leaseSeconds: leaseSeconds)
    }

    /// Takes a slot at once, or queues the call behind earlier ones; refused
    /// with ``LockFailure/tooManyWaiters(name:limit:)`` when the queue is full.
    ///
    /// `makeOutcomeHandler` is called once, before this returns, only if the
    /// call queues; it must not call into the table. A call taken at once or
    /// rejected never calls it. A queued call ends with exactly one call of the
    /// handler it made: `.granted` when a slot comes to it, `.timedOut` after
    /// `waitTimeoutSeconds` (0 waits forever), unless it is withdrawn first by
    /// ``cancelWait(_:)`` or ``closeSession(_:releasingLocks:)``.
    public func lock(
        name: String,
        size: Int32 = 1,
        leaseSeconds: Int32 = 0,
        waitTimeoutSeconds: Int32 = 0,
        session: SessionID,
        makeOutcomeHandler: () -> (WaitOutcome) -> Void
    ) throws(LockFailure) -> LockAttempt {
        let sessionRecord = try validatedSession(session)
        try validate(name: name, size: size)
        try validate(seconds: leaseSeconds, field: "lock_timeout_seconds")
        try validate(seconds: waitTimeoutSeconds, field: "wait_timeout_seconds")
        let record = try record(named: name, size: size)
        if record.hasFreeSlot || grantsBeyondSize, record.firstWaiter == nil {
            let grant = addHolder(to: record, session: session, sessionRecord: sessionRecord, leaseSeconds: leaseSeconds)
            return .acquired(grant)
        }
        guard record.waiterCount < maxWaiters else {
            throw .tooManyWaiters(name: name, limit: maxWaiters)
        }
        lastTicket += 1
        let ticket = WaitTicket(rawValue: lastTicket)
        let waitDeadline = waitTimeoutSeconds > 0 ? deadline(afterSeconds: waitTimeoutSeconds) : nil
        let waiter = WaiterRecord(
            ticket: ticket,
            session: session,
            leaseSeconds: leaseSeconds,
            waitDeadline: waitDeadline,
            onOutcome: makeOutcomeHandler()
        )
        record.enqueue(waiter)
        queuedWaiters[ticket.rawValue] = waiter
        sessionRecord.waiters[ticket.rawValue] = waiter
        if let waitDeadline {
            waitDeadlines.insert(waiter, deadline: waitDeadline) { !$1.isQueued }
        }
        return .queued(ticket)
    }

    /// Withdraws a queued call. Returns false when it already ended (granted or
    /// timed out): its handler has then been called, and a grant must be undone
    /// by ``unlock(name:key:)`` if the caller can no longer deliver it.
    @discardableResult
    public func cancelWait(_ ticket: WaitTicket) -> Bool {
        guard let waiter = queuedWaiters[ticket.rawValue] else { return false }
        let record = waiter.record
        withdraw(waiter)
        _ = waiter.takeOutcomeHandler()
        if let record { removeIfIdle(record) }
        sessions[waiter.session]?.waiters.removeValue(forKey: ticket.rawValue)
        return true
    }

    /// Withdraws every queued call, oldest first, and tells each handler
    /// `.withdrawn`: for a server that stops serving and answers them at once.
    public func withdrawAllWaiters() {
        let waiters = queuedWaiters.values.sorted { $0.ticket.rawValue < $1.ticket.rawValue }
        var handlers: [(WaitOutcome) -> Void] = []
        for waiter in waiters {
            let record = waiter.record
            withdraw(waiter)
            sessions[waiter.session]?.waiters.removeValue(forKey: waiter.ticket.rawValue)
            if let handler = waiter.takeOutcomeHandler() { handlers.append(handler) }
            if let record { removeIfIdle(record) }
        }
        for handler in handlers { handler(.withdrawn) }
    }

    // MARK: Releasing and renewing

    public func unlock(name: String, key: String) throws(LockFailure) {
        guard let record = locks.find(name) else { throw .lockDoesNotExist(name: name) }
        guard let key = LockKey(key), let index = record.holderIndex(for: key) else {
            throw .invalidLockKey(name: name)
        }
        release(holderAt: index, of: record)
    }

    /// Releases every holder of `name` at once, as an administrator may when a
    /// holder is stuck, then grants the freed slots to the queue in order.
    /// Returns how many holds were released.
    public func forceUnlock(name: String) throws(LockFailure) -> Int {
        guard let record = locks.find(name) else { throw .lockDoesNotExist(name: name) }
        let released = record.holderCount
        while record.hasHolders {
            removeHolder(at: record.holderCount - 1, of: record)
        }
        var grants: [(WaiterRecord, LockGrant)] = []
        grantFreeSlots(of: record, into: &grants)
        removeIfIdle(record)
        deliver(grants)
        return released
    }

    /// Sets the lease of a held slot to `leaseSeconds` from now; a slot without a
    /// lease gets one. A hold no session owns (its session ended and the
    /// server kept it, or it came back from a state file) joins `session`, so
    /// it goes when that session ends. Returns the slot's fencing token,
    /// which renewing keeps.
    @discardableResult
    public func renew(name: String, key: String, leaseSeconds: Int32, session: SessionID? = nil) throws(LockFailure) -> UInt64 {
        guard leaseSeconds > 0 else {
            throw .invalidArgument("lock_timeout_seconds must be at least 1 to renew a lock, got \(leaseSeconds)")
        }
        guard let record = locks.find(name), let key = LockKey(key), let index = record.holderIndex(for: key) else {
            throw .lockDoesNotExistOrInvalidKey(name: name)
        }
        let leaseDeadline = deadline(afterSeconds: leaseSeconds)
        record[holder: index].leaseDeadline = leaseDeadline
        if record[holder: index].session == nil, let session, let sessionRecord = sessions[session] {
            record[holder: index].session = session
            record[holder: index].sessionSlot = sessionRecord.addHolding(of: record)
        }
        journal?.leaseChanged(
            name: name, size: record.size, grant: LockGrant(key: key, fencingToken: record[holder: index].fencingToken), leaseDeadline: leaseDeadline
        )
        // Extending needs no new entry: the armed one re-arms itself when it
        // comes due (see expireLease). Shortening arms a new one and makes the
        // old one stale. Either way a hold has one live entry, however its
        // client renews.
        if leaseDeadline < record[holder: index].armedDeadline {
            queueLeaseEntry(record, at: leaseDeadline)
            record[holder: index].armedDeadline = leaseDeadline
        }
        return record[holder: index].fencingToken
    }

    // MARK: Restoring

    /// Puts back a hold that a state file kept across a restart, owned by no
    /// session until its key renews it (see ``renew(name:key:leaseSeconds:session:)``).
    /// The journal is not told: the hold is already on record.
    public func restoreHold(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64) throws(LockFailure) {
        guard !name.isEmpty, size >= 1 else {
            throw .invalidArgument("cannot restore a hold of \"\(name)\" with size \(size)")
        }
        // Held locks come back even past a lowered --max_locks or --max_name_bytes:
        // dropping one would hand it to a second holder.
        let record = try record(named: name, size: size, withinLimit: false)
        guard record.hasFreeSlot, record.holderIndex(for: grant.key) == nil else {
            removeIfIdle(record)
            throw .invalidArgument("cannot restore a hold of \(name): its \(size) slots are taken or its key is held twice")
        }
        queueLeaseEntry(record, at: leaseDeadline)
        record.appendHolder(Holder(grant, session: nil, sessionSlot: 0, leaseDeadline: leaseDeadline))
        holderCount += 1
    }

    /// Every later grant's token is above `floor` as well.
    public func raiseFencingTokens(above floor: UInt64) {
        fencingTokens.raise(above: floor)
    }

    /// The largest fencing token handed out so far, or the floor the table started above.
    public var fencingTokenHighWater: UInt64 { fencingTokens.highWater }

    // MARK: Time

    /// Entries queued for lease expiry, live or stale; tests check it stays bounded.
    var leaseEntryCount: Int { leaseDeadlines.count }

    /// The earliest monotonic time at which ``expireDue()`` has work, if any.
    public var nextDeadline: UInt64? {
        switch (leaseDeadlines.earliestDeadline, waitDeadlines.earliestDeadline) {
        case (nil, nil): return nil
        case (let lease?, nil): return lease
        case (nil, let wait?): return wait
        case (let lease?, let wait?): return min(lease, wait)
        }
    }

    /// Releases expired leases and times out expired waits, as of the clock's
    /// now, in deadline order: when this runs late, a wait that ended before a
    /// lease did has timed out and must not receive that lease's slot.
    public func expireDue() {
        let now = clock.nanosecondsNow
        var grants: [(WaiterRecord, LockGrant)] = []
        var timedOut: [WaiterRecord] = []
        while true {
            let leaseDeadline = leaseDeadlines.earliestDeadline.flatMap { $0 <= now ? $0 : nil }
            let waitDeadline = waitDeadlines.earliestDeadline.flatMap { $0 <= now ? $0 : nil }
            if let leaseDeadline, waitDeadline.map({ leaseDeadline <= $0 }) ?? true {
                let (deadline, record) = leaseDeadlines.popDue(now: now)!
                expireLease(record, deadline: deadline, grants: &grants)
            } else if waitDeadline != nil {
                let (deadline, waiter) = waitDeadlines.popDue(now: now)!
                if expireWait(waiter, deadline: deadline, grants: &grants) {
                    timedOut.append(waiter)
                }
            } else {
                break
            }
        }
        deliver(grants)
        for waiter in timedOut {
            waiter.takeOutcomeHandler()?(.timedOut)
        }
    }

    /// An entry names a record and a deadline, not a hold: it speaks for
    /// every hold of that record armed at that deadline. Stale: no such hold
    /// is left.
    private static func isStaleLease(_ deadline: UInt64, _ record: LockRecord) -> Bool {
        record.holderIndex(armedAt: deadline) == nil
    }

    /// Queues the entry for a hold of `record` about to be armed at
    /// `deadline`, unless another hold armed there has one: an entry per hold
    /// would pile up while one slot of a sized lock churns beside a hold
    /// armed at the same deadline, none of them ever stale.
    private func queueLeaseEntry(_ record: LockRecord, at deadline: UInt64) {
        guard record.holderIndex(armedAt: deadline) == nil else { return }
        leaseDeadlines.insert(record, deadline: deadline, isStale: Self.isStaleLease)
    }

    /// Serves every hold of `record` armed at `deadline`: one renewed since
    /// comes back at its new deadline, the others are released. The entry of
    /// a released hold, or one another entry replaced, finds none.
    private func expireLease(_ record: LockRecord, deadline: UInt64, grants: inout [(WaiterRecord, LockGrant)]) {
        var released = false
        while let index = record.holderIndex(armedAt: deadline) {
            guard let leaseDeadline = record[holder: index].leaseDeadline, leaseDeadline <= deadline else {
                let renewedUntil = record[holder: index].leaseDeadline ?? .max
                if renewedUntil != .max { queueLeaseEntry(record, at: renewedUntil) }
                record[holder: index].armedDeadline = renewedUntil
                continue
            }
            removeHolder(at: index, of: record)
            leaseExpiryCount += 1
            released = true
        }
        guard released else { return }
        grantFreeSlots(of: record, into: &grants)
        removeIfIdle(record)
    }

    private func expireWait(_ waiter: WaiterRecord, deadline: UInt64, grants: inout [(WaiterRecord, LockGrant)]) -> Bool {
        guard waiter.isQueued, waiter.waitDeadline == deadline else { return false }
        let record = waiter.record
        withdraw(waiter)
        sessions[waiter.session]?.waiters.removeValue(forKey: waiter.ticket.rawValue)
        if let record {
            grantFreeSlots(of: record, into: &grants)
            removeIfIdle(record)
        }
        return true
    }

    // MARK: Introspection

    public var lockCount: Int { locks.count }

    public func lockInfo(name: String) -> LockInfo? {
        locks.find(name).map(LockInfo.init)
    }

    /// Every live lock, in no particular order: a copy, for administrators.
    public var allLocks: [LockInfo] {
        locks.records.map(LockInfo.init)
    }

    public func heldLockCount(session: SessionID) -> Int {
        sessions[session]?.holdings.count ?? 0
    }

    /// `Lock` calls of `session` still queued.
    public func waitingCallCount(session: SessionID) -> Int {
        sessions[session]?.waiters.count ?? 0
    }

    // MARK: Private

    private func validatedSession(_ id: SessionID) throws(LockFailure) -> SessionRecord {
        guard let session = sessions[id] else { throw .invalidArgument("\(id) has ended") }
        return session
    }

    private func validate(name: String, size: Int32) throws(LockFailure) {
        if name.isEmpty {
            throw .invalidArgument("lock name must not be empty")
        }
        if name.utf8.count > maxNameBytes {
            throw .invalidArgument("lock name is \(name.utf8.count) bytes, longer than the limit of \(maxNameBytes)")
        }
        if size < 1 {
            throw .invalidLockSize(size)
        }
    }

    private func validate(seconds: Int32, field: String) throws(LockFailure) {
        if seconds < 0 {
            throw .invalidArgument("\(field) must not be negative, got \(seconds)")
        }
    }

    private func record(named name: String, size: Int32, withinLimit: Bool = true) throws(LockFailure) -> LockRecord {
        var nameBytes = name
        let (found, hash) = nameBytes.withUTF8 { bytes in
            let hash = LockIndex.hash(of: bytes)
            return (locks.find(bytes, hash: hash), hash)
        }
        if let record = found {
            guard record.size == size else {
                throw .lockSizeMismatch(name: name, lockSize: record.size, requestedSize: size)
            }
            return record
        }
        guard locks.count < maxLocks || !withinLimit else { throw .tooManyLocks(name: name, limit: maxLocks) }
        let record = LockRecord.make(name: name, size: size, nameHash: hash)
        locks.insert(record)
        return record
    }

    private func deadline(afterSeconds seconds: Int32) -> UInt64 {
        clock.nanosecondsNow &+ UInt64(seconds) * 1_000_000_000
    }

    private func addHolder(
        to record: LockRecord,
        session: SessionID,
        sessionRecord: SessionRecord,
        leaseSeconds: Int32
    ) -> LockGrant {
        var key = keyGenerator.next()
        while record.holderIndex(for: key) != nil {
            key = keyGenerator.next()
        }
        var leaseDeadline: UInt64?
        if leaseSeconds > 0 {
            let deadline = deadline(afterSeconds: leaseSeconds)
            queueLeaseEntry(record, at: deadline)
            leaseDeadline = deadline
        }
        let grant = LockGrant(key: key, fencingToken: fencingTokens.next())
        let sessionSlot = sessionRecord.addHolding(of: record)
        record.appendHolder(Holder(grant, session: session, sessionSlot: sessionSlot, leaseDeadline: leaseDeadline))
        holderCount += 1
        journal?.holdGranted(name: record.name, size: record.size, grant: grant, leaseDeadline: leaseDeadline)
        return grant
    }

    private func release(holderAt index: Int, of record: LockRecord) {
        removeHolder(at: index, of: record)
        var grants: [(WaiterRecord, LockGrant)] = []
        grantFreeSlots(of: record, into: &grants)
        removeIfIdle(record)
        deliver(grants)
    }

    private func removeHolder(at index: Int, of record: LockRecord) {
        let holder = record.removeHolder(at: index)
        holderCount -= 1
        if let session = holder.session {
            sessions[session]?.removeHolding(at: holder.sessionSlot)
        }
        journal?.holdReleased(name: record.name, key: holder.key)
    }

    /// Hands free slots to the head of the queue, in order. The handlers are
    /// called later by ``deliver(_:)`` so they see a consistent table.
    private func grantFreeSlots(of record: LockRecord, into grants: inout [(WaiterRecord, LockGrant)]) {
        while record.hasFreeSlot, let waiter = record.firstWaiter {
            withdraw(waiter)
            guard let sessionRecord = sessions[waiter.session] else { continue }
            sessionRecord.waiters.removeValue(forKey: waiter.ticket.rawValue)
            let grant = addHolder(to: record, session: waiter.session, sessionRecord: sessionRecord, leaseSeconds: waiter.leaseSeconds)
            grants.append((waiter, grant))
        }
    }

    private func deliver(_ grants: [(WaiterRecord, LockGrant)]) {
        for (waiter, grant) in grants {
            waiter.takeOutcomeHandler()?(.granted(grant))
        }
    }

    /// Unlinks a waiter from its queue. The caller removes the lock if that left it idle.
    private func withdraw(_ waiter: WaiterRecord) {
        queuedWaiters.removeValue(forKey: waiter.ticket.rawValue)
        waiter.record?.remove(waiter)
    }

    private func removeIfIdle(_ record: LockRecord) {
        guard record.isIdle else { return }
        locks.remove(record)
    }
}
