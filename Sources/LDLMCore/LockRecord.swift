/// One live lock: its fixed size, the holders in its slots and its FIFO queue.
final class LockRecord {
    let name: String
    let size: Int32
    var holders: [Holder] = []
    private(set) var firstWaiter: WaiterRecord?
    private(set) var lastWaiter: WaiterRecord?
    private(set) var waiterCount = 0

    init(name: String, size: Int32) {
        self.name = name
        self.size = size
    }

    var hasFreeSlot: Bool { holders.count < Int(size) }
    var isIdle: Bool { holders.isEmpty && firstWaiter == nil }

    func holderIndex(for key: LockKey) -> Int? {
        holders.firstIndex { $0.key == key }
    }

    func enqueue(_ waiter: WaiterRecord) {
        waiter.record = self
        waiter.previous = lastWaiter
        if let lastWaiter {
            lastWaiter.next = waiter
        } else {
            firstWaiter = waiter
        }
        lastWaiter = waiter
        waiterCount += 1
    }

    func remove(_ waiter: WaiterRecord) {
        if let previous = waiter.previous {
            previous.next = waiter.next
        } else {
            firstWaiter = waiter.next
        }
        if let next = waiter.next {
            next.previous = waiter.previous
        } else {
            lastWaiter = waiter.previous
        }
        waiter.previous = nil
        waiter.next = nil
        waiter.record = nil
        waiterCount -= 1
    }
}

/// A slot of a lock, owned by whoever knows `key`.
struct Holder {
    let key: LockKey
    /// `nil` once its session ended with `releasingLocks: false`: the key still works.
    var session: SessionID?
    /// Monotonic nanoseconds after which the slot is released; `nil` without a lease.
    var leaseDeadline: UInt64?
}

/// A queued `Lock` call. Linked into its lock's queue while `record` is set.
final class WaiterRecord {
    let ticket: WaitTicket
    let session: SessionID
    let leaseSeconds: Int32
    let waitDeadline: UInt64?
    /// Dropped once used or withdrawn, so a stale deadline entry does not keep
    /// the caller's objects alive until its deadline passes.
    private var onOutcome: ((WaitOutcome) -> Void)?
    var record: LockRecord?
    var previous: WaiterRecord?
    var next: WaiterRecord?

    init(
        ticket: WaitTicket,
        session: SessionID,
        leaseSeconds: Int32,
        waitDeadline: UInt64?,
        onOutcome: @escaping (WaitOutcome) -> Void
    ) {
        self.ticket = ticket
        self.session = session
        self.leaseSeconds = leaseSeconds
        self.waitDeadline = waitDeadline
        self.onOutcome = onOutcome
    }

    var isQueued: Bool { record != nil }

    func takeOutcomeHandler() -> ((WaitOutcome) -> Void)? {
        defer { onOutcome = nil }
        return onOutcome
    }
}

/// What a session owns, so ending it releases exactly that.
final class SessionRecord {
    var holdings: [LockKey: LockRecord] = [:]
    var waiters: [UInt64: WaiterRecord] = [:]
}
