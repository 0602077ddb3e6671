/// A binary min-heap of deadlines.
///
/// Entries are not removed one by one: a released hold or a granted waiter
/// leaves its entry behind, and the table checks each popped entry against the
/// live state. That keeps release and grant O(log n) without an index into the
/// heap. So that stale entries cannot pile up (locks taken and released far
/// faster than their timeouts), the queue is swept whenever it has doubled.
struct DeadlineQueue<Payload> {
    private var entries: [(deadline: UInt64, payload: Payload)] = []
    private var sweepAtCount = 1024

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }
    var earliestDeadline: UInt64? { entries.first?.deadline }

    /// Adds an entry; when the queue has doubled since the last sweep, first
    /// drops every entry `isStale` (given its deadline and payload) says no
    /// longer matters.
    mutating func insert(_ payload: Payload, deadline: UInt64, isStale: (UInt64, Payload) -> Bool) {
        if entries.count >= sweepAtCount {
            entries.removeAll { isStale($0.deadline, $0.payload) }
            for parent in stride(from: entries.count / 2 - 1, through: 0, by: -1) {
                siftDown(from: parent)
            }
            sweepAtCount = max(1024, entries.count * 2)
        }
        entries.append((deadline, payload))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].deadline < entries[parent].deadline else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if its deadline is at or before `now`.
    mutating func popDue(now: UInt64) -> (deadline: UInt64, payload: Payload)? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            siftDown(from: 0)
        }
        return first
    }

    private mutating func siftDown(from start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < entries.count, entries[left].deadline < entries[smallest].deadline { smallest = left }
            if right < entries.count, entries[right].deadline < entries[smallest].deadline { smallest = right }
            if smallest == parent { return }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
