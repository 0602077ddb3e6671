/// One live lock: its fixed size, the holders in its slots and its FIFO queue.
///
/// Laid out for memory: most locks have one holder and no waiters, so the first
/// holder is stored inline and the queue is only allocated while someone waits.
final class LockRecord {
    let name: String
    let size: Int32
    @exclusivity(unchecked)
    var holders = HolderList()
    @exclusivity(unchecked)
    private var queue: WaiterQueue?

    init(name: String, size: Int32) {
        self.name = name
        self.size = size
    }

    var hasFreeSlot: Bool { holders.count < Int(size) }
    var isIdle: Bool { holders.isEmpty && queue == nil }
    var firstWaiter: WaiterRecord? { queue?.first }
    var waiterCount: Int { queue?.count ?? 0 }

    func holderIndex(for key: LockKey) -> Int? {
        holders.firstIndex { $0.key == key }
    }

    func enqueue(_ waiter: WaiterRecord) {
        let queue = self.queue ?? WaiterQueue()
        self.queue = queue
        waiter.record = self
        waiter.previous = queue.last
        if let last = queue.last {
            last.next = waiter
        } else {
            queue.first = waiter
        }
        queue.last = waiter
        queue.count += 1
    }

    func remove(_ waiter: WaiterRecord) {
        guard let queue else { return }
        if let previous = waiter.previous {
            previous.next = waiter.next
        } else {
            queue.first = waiter.next
        }
        if let next = waiter.next {
            next.previous = waiter.previous
        } else {
            queue.last = waiter.previous
        }
        waiter.previous = nil
        waiter.next = nil
        waiter.record = nil
        queue.count -= 1
        if queue.count == 0 {
            self.queue = nil
        }
    }
}

private final class WaiterQueue {
    @exclusivity(unchecked)
    var first: WaiterRecord?
    @exclusivity(unchecked)
    var last: WaiterRecord?
    @exclusivity(unchecked)
    var count = 0
}

/// A slot of a lock, owned by whoever knows `key`. 40 bytes: absent values are
/// encoded in the words rather than as optionals.
struct Holder {
    let key: LockKey
    let fencingToken: UInt64
    private var sessionRaw: UInt64
    private var leaseRaw: UInt64
    /// The deadline of the one expiry-queue entry that speaks for this hold;
    /// `.max` for none. Other entries left for it are stale.
    var armedDeadline: UInt64

    /// A hold with a lease must have its queue entry at `leaseDeadline`.
    init(_ grant: LockGrant, session: SessionID?, leaseDeadline: UInt64?) {
        self.key = grant.key
        self.fencingToken = grant.fencingToken
        self.sessionRaw = session?.rawValue ?? 0
        self.leaseRaw = leaseDeadline ?? .max
        self.armedDeadline = leaseDeadline ?? .max
    }

    /// `nil` once its session ended with `releasingLocks: false`: the key still works.
    var session: SessionID? {
        get { sessionRaw == 0 ? nil : SessionID(rawValue: sessionRaw) }
        set { sessionRaw = newValue?.rawValue ?? 0 }
    }

    /// Monotonic nanoseconds after which the slot is released; `nil` without a lease.
    var leaseDeadline: UInt64? {
        get { leaseRaw == .max ? nil : leaseRaw }
        set { leaseRaw = newValue ?? .max }
    }
}

/// The holders of one lock: the first inline, any more in an array that a
/// size-1 lock never allocates.
struct HolderList {
    private var first: Holder?
    private var rest: [Holder] = []

    var count: Int { first == nil ? 0 : 1 + rest.count }
    var isEmpty: Bool { first == nil }

    subscript(index: Int) -> Holder {
        get { index == 0 ? first! : rest[index - 1] }
        set {
            if index == 0 { first = newValue } else { rest[index - 1] = newValue }
        }
    }

    mutating func append(_ holder: Holder) {
        if first == nil { first = holder } else { rest.append(holder) }
    }

    @discardableResult
    mutating func remove(at index: Int) -> Holder {
        guard index == 0 else { return rest.remove(at: index - 1) }
        let removed = first!
        first = rest.isEmpty ? nil : rest.removeFirst()
        return removed
    }

    func firstIndex(where predicate: (Holder) -> Bool) -> Int? {
        guard let first else { return nil }
        if predicate(first) { return 0 }
        return rest.firstIndex(where: predicate).map { $0 + 1 }
    }

    func map<T>(_ transform: (Holder) -> T) -> [T] {
        guard let first else { return [] }
        return [transform(first)] + rest.map(transform)
    }
}

/// A queued `Lock` call. Linked into its lock's queue while `record` is set.
final class WaiterRecord {
    let ticket: WaitTicket
    let session: SessionID
    let leaseSeconds: Int32
    let waitDeadline: UInt64?
    /// Dropped once used or withdrawn, so a stale deadline entry does not keep
    /// the caller's objects alive until its deadline passes.
    @exclusivity(unchecked)
    private var onOutcome: ((WaitOutcome) -> Void)?
    @exclusivity(unchecked)
    var record: LockRecord?
    @exclusivity(unchecked)
    var previous: WaiterRecord?
    @exclusivity(unchecked)
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
    @exclusivity(unchecked)
    var holdings: [LockKey: LockRecord] = [:]
    @exclusivity(unchecked)
    var waiters: [UInt64: WaiterRecord] = [:]
}
