#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One live lock: its name, its fixed size, the holders in its slots and its
/// FIFO queue.
///
/// Laid out for memory, one allocation per lock: the name's UTF-8 bytes are
/// tail-allocated after the fields (a `String` over 15 bytes is a second heap
/// object with a 32-byte header), and most locks have one holder and no
/// waiters, so the first holder is inline while later holders and the queue
/// share one object made only when needed. The fields take 72 bytes: with the
/// 16-byte object header a 32-byte name just fills a 128-byte malloc chunk,
/// and four bytes more would cost sixteen.
final class LockRecord: ManagedBuffer<LockRecordFields, UInt8> {
    static func make(name: String, size: Int32, nameHash: UInt32? = nil) -> LockRecord {
        var name = name
        return name.withUTF8 { bytes in
            let fields = LockRecordFields(
                size: size, nameByteCount: Int32(bytes.count), nameHash: nameHash ?? LockIndex.hash(of: bytes)
            )
            let record = unsafeDowncast(create(minimumCapacity: bytes.count) { _ in fields }, to: LockRecord.self)
            if let source = bytes.baseAddress {
                record.withUnsafeMutablePointerToElements { $0.initialize(from: source, count: bytes.count) }
            }
            return record
        }
    }

    /// `ManagedBuffer.header` is a class property, so every access to it is
    /// checked for exclusivity at run time (about 80 instructions); through
    /// the pointer it is not. The header lives as long as the record.
    private var fields: UnsafeMutablePointer<LockRecordFields> {
        withUnsafeMutablePointerToHeader { $0 }
    }

    var size: Int32 { fields.pointee.size }
    var nameHash: UInt32 { fields.pointee.nameHash }

    /// Made on each call: only the journal, errors and admin views need it.
    var name: String {
        withUnsafeMutablePointerToElements { bytes in
            String(decoding: UnsafeBufferPointer(start: bytes, count: Int(fields.pointee.nameByteCount)), as: UTF8.self)
        }
    }

    /// Byte equality, as in ``LockIndex``.
    func hasName(_ other: UnsafeBufferPointer<UInt8>) -> Bool {
        guard other.count == Int(fields.pointee.nameByteCount) else { return false }
        guard let otherBytes = other.baseAddress else { return true }
        return withUnsafeMutablePointerToElements { memcmp($0, otherBytes, other.count) == 0 }
    }

    // MARK: Holders

    var holderCount: Int {
        fields.pointee.firstHolder.isVacant ? 0 : 1 + (fields.pointee.overflow?.laterHolders.count ?? 0)
    }

    var hasFreeSlot: Bool { holderCount < Int(fields.pointee.size) }
    var hasHolders: Bool { !fields.pointee.firstHolder.isVacant }
    var isIdle: Bool { fields.pointee.firstHolder.isVacant && fields.pointee.overflow == nil }

    /// The holders in the order they took their slots.
    var holders: [Holder] {
        guard hasHolders else { return [] }
        return [fields.pointee.firstHolder] + (fields.pointee.overflow?.laterHolders ?? [])
    }

    subscript(holder index: Int) -> Holder {
        get { index == 0 ? fields.pointee.firstHolder : fields.pointee.overflow!.laterHolders[index - 1] }
        set {
            if index == 0 {
                fields.pointee.firstHolder = newValue
            } else {
                fields.pointee.overflow!.laterHolders[index - 1] = newValue
            }
        }
    }

    func holderIndex(for key: LockKey) -> Int? {
        holderIndex { $0.key == key }
    }

    /// The holder whose lease entry is due at `deadline`, if one still is.
    func holderIndex(armedAt deadline: UInt64) -> Int? {
        holderIndex { $0.armedDeadline == deadline }
    }

    /// The holder listed at `slot` of the holdings of `session`.
    func holderIndex(session: SessionID, slot: Int32) -> Int? {
        holderIndex { $0.sessionSlot == slot && $0.session == session }
    }

    private func holderIndex(where predicate: (Holder) -> Bool) -> Int? {
        guard hasHolders else { return nil }
        if predicate(fields.pointee.firstHolder) { return 0 }
        return fields.pointee.overflow?.laterHolders.firstIndex(where: predicate).map { $0 + 1 }
    }

    func appendHolder(_ holder: Holder) {
        if fields.pointee.firstHolder.isVacant {
            fields.pointee.firstHolder = holder
        } else {
            overflow().laterHolders.append(holder)
        }
    }

    /// Later holders move up one place, as in an array.
    @discardableResult
    func removeHolder(at index: Int) -> Holder {
        guard index == 0 else {
            let removed = fields.pointee.overflow!.laterHolders.remove(at: index - 1)
            dropOverflowIfEmpty()
            return removed
        }
        let removed = fields.pointee.firstHolder
        if let overflow = fields.pointee.overflow, !overflow.laterHolders.isEmpty {
            fields.pointee.firstHolder = overflow.laterHolders.removeFirst()
            dropOverflowIfEmpty()
        } else {
            fields.pointee.firstHolder = .vacant
        }
        return removed
    }

    // MARK: Queue

    var firstWaiter: WaiterRecord? { fields.pointee.overflow?.firstWaiter }
    var waiterCount: Int { fields.pointee.overflow?.waiterCount ?? 0 }

    func enqueue(_ waiter: WaiterRecord) {
        let queue = overflow()
        waiter.record = self
        waiter.previous = queue.lastWaiter
        if let last = queue.lastWaiter {
            last.next = waiter
        } else {
            queue.firstWaiter = waiter
        }
        queue.lastWaiter = waiter
        queue.waiterCount += 1
    }

    func remove(_ waiter: WaiterRecord) {
        guard let queue = fields.pointee.overflow else { return }
        if let previous = waiter.previous {
            previous.next = waiter.next
        } else {
            queue.firstWaiter = waiter.next
        }
        if let next = waiter.next {
            next.previous = waiter.previous
        } else {
            queue.lastWaiter = waiter.previous
        }
        waiter.previous = nil
        waiter.next = nil
        waiter.record = nil
        queue.waiterCount -= 1
        dropOverflowIfEmpty()
    }

    private func overflow() -> LockOverflow {
        if let overflow = fields.pointee.overflow { return overflow }
        let overflow = LockOverflow()
        fields.pointee.overflow = overflow
        return overflow
    }

    private func dropOverflowIfEmpty() {
        if let overflow = fields.pointee.overflow, overflow.laterHolders.isEmpty, overflow.waiterCount == 0 {
            fields.pointee.overflow = nil
        }
    }
}

/// The fields of a ``LockRecord``, before its name's bytes. Declared largest
/// first so the 4-byte fields fill the end of the 52-byte holder.
struct LockRecordFields {
    var firstHolder = Holder.vacant
    let size: Int32
    let nameByteCount: Int32
    /// The low 32 bits of the name's hash: the index finds a record's slot,
    /// and grows, without hashing its name again.
    let nameHash: UInt32
    var overflow: LockOverflow?

    init(size: Int32, nameByteCount: Int32, nameHash: UInt32) {
        self.size = size
        self.nameByteCount = nameByteCount
        self.nameHash = nameHash
    }
}

/// What only a shared or contended lock needs: holders after the first and the queue.
final class LockOverflow {
    @exclusivity(unchecked)
    var laterHolders: [Holder] = []
    @exclusivity(unchecked)
    var firstWaiter: WaiterRecord?
    @exclusivity(unchecked)
    var lastWaiter: WaiterRecord?
    @exclusivity(unchecked)
    var waiterCount = 0
}

/// A slot of a lock, owned by whoever knows `key`. 52 bytes: absent values are
/// encoded in the words rather than as optionals.
struct Holder {
    let key: LockKey
    let fencingToken: UInt64
    private var sessionRaw: UInt64
    private var leaseRaw: UInt64
    /// The deadline of the one expiry-queue entry that speaks for this hold;
    /// `.max` for none. Other entries left for it are stale.
    var armedDeadline: UInt64
    /// Where the holdings of `session` list this hold's record (see
    /// ``SessionRecord``); meaningless without a session. Negative only in ``vacant``.
    var sessionSlot: Int32

    /// A hold with a lease must have its queue entry at `leaseDeadline`.
    init(_ grant: LockGrant, session: SessionID?, sessionSlot: Int32, leaseDeadline: UInt64?) {
        self.key = grant.key
        self.fencingToken = grant.fencingToken
        self.sessionRaw = session?.rawValue ?? 0
        self.leaseRaw = leaseDeadline ?? .max
        self.armedDeadline = leaseDeadline ?? .max
        self.sessionSlot = sessionSlot
    }

    private init(vacantSlot: ()) {
        key = LockKey(high: 0, low: 0)
        fencingToken = 0
        sessionRaw = 0
        leaseRaw = .max
        armedDeadline = .max
        sessionSlot = -1
    }

    /// Fills the inline slot of a record nobody holds; never in a list of holders.
    static var vacant: Holder { Holder(vacantSlot: ()) }

    var isVacant: Bool { sessionSlot < 0 }

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
///
/// Its holds are a list of their records, one entry per hold, and each hold
/// knows its place in it (``Holder/sessionSlot``): adding and removing are
/// O(1) without hashing, and a lock costs the session 8 bytes, not a
/// dictionary entry of 24 at a load factor of at most 3/4.
final class SessionRecord {
    let id: SessionID
    @exclusivity(unchecked)
    private(set) var holdings: [LockRecord] = []
    @exclusivity(unchecked)
    var waiters: [UInt64: WaiterRecord] = [:]

    init(id: SessionID) {
        self.id = id
    }

    /// Lists a hold of `record` and returns its slot, for its ``Holder``.
    func addHolding(of record: LockRecord) -> Int32 {
        holdings.append(record)
        return Int32(holdings.count - 1)
    }

    /// Unlists the hold at `slot`, which its record no longer has. The last
    /// entry moves into the gap, so its hold is told its new slot.
    func removeHolding(at slot: Int32) {
        let moved = holdings.removeLast()
        let movedFrom = Int32(holdings.count)
        guard slot < movedFrom else { return }
        holdings[Int(slot)] = moved
        let index = moved.holderIndex(session: id, slot: movedFrom)!
        moved[holder: index].sessionSlot = slot
    }
}
