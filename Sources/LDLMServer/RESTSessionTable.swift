import DequeModule
import LDLMCore

/// The REST gateway's sessions: each cookie value names one lock session,
/// which ends once no request has used it for the idle timeout. Times are
/// nanoseconds on the lock manager's clock, passed in, so tests drive expiry.
///
/// Every session has the same timeout, so sessions expire in the order they
/// were last used: `expiryOrder` holds one entry per use, oldest first, and an
/// entry whose session was used again since (or ended) is skipped as stale.
struct RESTSessionTable {
    private struct Entry {
        let session: SessionID
        var expiresAt: UInt64
    }

    let idleTimeoutNanoseconds: UInt64
    let capacity: Int
    private var entries: [String: Entry] = [:]
    private var expiryOrder: Deque<(id: String, expiresAt: UInt64)> = []

    init(idleTimeoutNanoseconds: UInt64, capacity: Int) {
        self.idleTimeoutNanoseconds = idleTimeoutNanoseconds
        self.capacity = capacity
    }

    var count: Int { entries.count }
    var isFull: Bool { entries.count >= capacity }
    var sessionIDs: [String] { Array(entries.keys) }

    /// When the session used longest ago expires, unless used before then.
    var earliestExpiry: UInt64? { expiryOrder.first?.expiresAt }

    mutating func insert(id: String, session: SessionID, now: UInt64) {
        precondition(!isFull && entries[id] == nil)
        entries[id] = Entry(session: session, expiresAt: now + idleTimeoutNanoseconds)
        record(id)
    }

    /// The session `id` names, its idle time restarted; nil if it is unknown
    /// or has expired.
    mutating func use(id: String, now: UInt64) -> SessionID? {
        guard var entry = entries[id], entry.expiresAt > now else { return nil }
        entry.expiresAt = now + idleTimeoutNanoseconds
        entries[id] = entry
        record(id)
        return entry.session
    }

    /// Forgets the session `id` names and returns it; nil if it is unknown.
    mutating func remove(id: String) -> SessionID? {
        entries.removeValue(forKey: id)?.session
    }

    /// Forgets and returns every session idle for the timeout at `now`.
    mutating func removeExpired(now: UInt64) -> [SessionID] {
        var expired: [SessionID] = []
        while let oldest = expiryOrder.first, oldest.expiresAt <= now || isStale(oldest) {
            expiryOrder.removeFirst()
            if !isStale(oldest), let entry = entries.removeValue(forKey: oldest.id) {
                expired.append(entry.session)
            }
        }
        return expired
    }

    private func isStale(_ recorded: (id: String, expiresAt: UInt64)) -> Bool {
        entries[recorded.id]?.expiresAt != recorded.expiresAt
    }

    private mutating func record(_ id: String) {
        // One entry per use: with sessions used far more often than they
        // expire, stale entries would pile up without bound, so the queue is
        // rebuilt from the live sessions once it is twice their number.
        if expiryOrder.count >= 2 * entries.count + 1024 {
            expiryOrder = Deque(entries.map { (id: $0.key, expiresAt: $0.value.expiresAt) }.sorted { $0.expiresAt < $1.expiresAt })
            return
        }
        expiryOrder.append((id, entries[id]!.expiresAt))
    }
}
